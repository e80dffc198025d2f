"""Tokenization to integer arrays, cached as .npz so fine-tuning needs no TensorFlow.

Texts are packed by `reference_impl.tokenizers.WordPieceEncoder` (keras-hub's
WordPiece tokenizer with BERT's normalisation) into `[CLS] A [SEP] B [SEP]`
with segment ids 0 for A and 1 for B, the arrays every encoder of the
reference interface takes: `token_ids`, `segment_ids`, `padding_mask`, plus
`labels` and GLUE's `index` column.

The cache file name is a digest of the vocabulary file, casing, sequence
length, the data files' bytes and the number of examples, all computable
without TensorFlow: a machine without it (the JAX GPU runner) finds the
arrays that a machine with it wrote, and a changed file or tokenizer never
gets stale arrays. Drivers sharing a cache folder take a lock file per cache
entry, so one of them writes it and the others read it.
"""

import contextlib
import fcntl
import hashlib
import os

from reference_impl import tokenizers


def file_digest(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class PairEncoder:
    """A submission's WordPiece vocabulary and casing, at one sequence length."""

    def __init__(self, vocabulary_path, lowercase, sequence_length):
        self.vocabulary_path = vocabulary_path
        self.lowercase = lowercase
        self.sequence_length = sequence_length
        with open(vocabulary_path, encoding="utf-8") as handle:
            self.vocabulary = handle.read().splitlines()
        missing = [t for t in tokenizers.BERT_SPECIAL_TOKENS if t not in self.vocabulary]
        if missing:
            raise ValueError(f"{vocabulary_path} lacks the special tokens {missing}; a BERT WordPiece vocabulary needs them.")
        self.fingerprint = hashlib.sha256(
            f"{file_digest(vocabulary_path)}|{lowercase}|{sequence_length}".encode()
        ).hexdigest()[:16]
        self._encoder = None

    def encoder(self):
        if self._encoder is None:  # builds keras-hub's tokenizer: TensorFlow from here on
            self._encoder = tokenizers.WordPieceEncoder(self.vocabulary, self.sequence_length, lowercase=self.lowercase)
        return self._encoder


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on the file `path` (created if absent) while inside."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_encode(pair_encoder, examples, data_digest, cache_dir, name):
    """Arrays for `examples` read from data with digest `data_digest`, from `<cache_dir>/<name>-<key>.npz` when there."""
    key = hashlib.sha256(f"{pair_encoder.fingerprint}|{data_digest}|{len(examples)}".encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{name}-{key}.npz")
    os.makedirs(cache_dir, exist_ok=True)
    with exclusive(path + ".lock"):  # another driver may be writing this entry
        if os.path.exists(path):
            arrays = tokenizers.load_token_arrays(path)
        else:
            first = [text[0] for text in examples.texts]
            second = [text[1] for text in examples.texts] if len(examples.texts[0]) > 1 else None
            extra = {"index": examples.index.astype(str)}
            if examples.labels is not None:
                extra["labels"] = examples.labels
            arrays = tokenizers.encode_to_npz(pair_encoder.encoder(), path, first, second, **extra)
    arrays["padding_mask"] = arrays["padding_mask"].astype("int32")
    return arrays
