"""Tokenization to integer arrays, cached as .npz so fine-tuning needs no TensorFlow.

WordPiece is keras-hub's `WordPieceTokenizer` (tensorflow-text underneath) and
sentence pairs are packed by keras-hub's `MultiSegmentPacker` into
`[CLS] A [SEP] B [SEP]` with segment ids 0 for A and 1 for B, as BERT was
pretrained. The arrays are what every encoder following the reference
interface takes: `token_ids`, `segment_ids`, `padding_mask` (1 for real
tokens), plus `labels` when the split has them.

The cache key covers the vocabulary, casing, sequence length and the bytes
of the data file, so a changed file or tokenizer is never served stale arrays.
A machine without TensorFlow (the JAX GPU runner) reads the cache only.
"""

import hashlib
import os

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PairEncoder:
    """Turns `Examples` into the encoder's input arrays with a WordPiece vocabulary."""

    def __init__(self, vocabulary_path, lowercase, sequence_length):
        self.vocabulary_path = vocabulary_path
        self.lowercase = lowercase
        self.sequence_length = sequence_length
        with open(vocabulary_path, encoding="utf-8") as handle:
            self.vocabulary = [line.rstrip("\n") for line in handle]
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocabulary]
        if missing:
            raise ValueError(f"{vocabulary_path} lacks the special tokens {missing}; a BERT WordPiece vocabulary needs them.")
        self._tokenizer = None

    @property
    def fingerprint(self):
        text = f"{file_digest(self.vocabulary_path)}|{self.lowercase}|{self.sequence_length}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def encode(self, examples, batch_size=1024):
        token_ids, segment_ids = [], []
        for start in range(0, len(examples), batch_size):
            chunk = examples.texts[start : start + batch_size]
            ids, segments = self._pack(chunk)
            token_ids.append(ids)
            segment_ids.append(segments)
        arrays = {
            "token_ids": np.concatenate(token_ids).astype("int32"),
            "segment_ids": np.concatenate(segment_ids).astype("int32"),
        }
        arrays["padding_mask"] = (arrays["token_ids"] != self.vocabulary.index("[PAD]")).astype("int32")
        if examples.labels is not None:
            arrays["labels"] = examples.labels
        arrays["index"] = examples.index.astype(str)
        return arrays

    def _pack(self, texts):
        import keras_hub  # TensorFlow is needed here only, never to fine-tune.

        if self._tokenizer is None:
            self._tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
                vocabulary=self.vocabulary, lowercase=self.lowercase, strip_accents=self.lowercase
            )
            self._packer = keras_hub.layers.MultiSegmentPacker(
                sequence_length=self.sequence_length,
                start_value=self.vocabulary.index("[CLS]"),
                end_value=self.vocabulary.index("[SEP]"),
                pad_value=self.vocabulary.index("[PAD]"),
            )
        segments = tuple(self._tokenizer([text[i] for text in texts]) for i in range(len(texts[0])))
        ids, segment_ids = self._packer(segments)
        return np.asarray(ids), np.asarray(segment_ids)


def cached_encode(encoder, examples, data_path, cache_dir, name):
    """Encode `examples` read from `data_path`, reusing `<cache_dir>/<name>-<key>.npz`."""
    key = hashlib.sha256(f"{encoder.fingerprint}|{file_digest(data_path)}|{len(examples)}".encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{name}-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as stored:
            return {k: stored[k] for k in stored.files}
    arrays = encoder.encode(examples)
    os.makedirs(cache_dir, exist_ok=True)
    temporary = path + ".partial.npz"
    np.savez(temporary, **arrays)
    os.replace(temporary, path)  # a killed run never leaves a half-written cache
    return arrays
