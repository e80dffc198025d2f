"""Tokenization to integer arrays, cached as .npz so fine-tuning needs no TensorFlow.

Each submission's own tokenizer packs the texts:
- `PresetTokenizer`: the family's encoder loaded from the preset folder
  (`reference_impl.families`: WordPiece `[CLS] A [SEP] B [SEP]`, byte-level
  BPE `<s> A </s></s> B </s>` or GPT-2's `A <|endoftext|> B`, SentencePiece),
  giving `token_ids`, `segment_ids`, `padding_mask`; for ELMo, `character_ids`
  [N, T, 50] of the words (a pair as `<S> A </S> <S> B </S>`);
- `PairEncoder`: the older format's WordPiece `vocab.txt` and casing;
plus `labels` and GLUE's `index` column. A model reads the arrays it has
inputs for (`segment_ids` only where the family has them).

The cache file name is a digest of the tokenizer's files, casing, sequence
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

import numpy as np

from reference_impl import elmo_data, tokenizers

# Preset files that are not the tokenizer's: changing them leaves the token arrays valid.
MODEL_ONLY_FILES = ("model.weights.h5", "metadata.json")


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

    def encode(self, first, second=None):
        return self.encoder().encode(first, second)


class CharacterEncoder:
    """ELMo's input: the characters of each word, `character_ids` [N, sequence_length, 50]."""

    vocabulary_size = None  # characters: no token vocabulary to match

    def __init__(self, sequence_length):
        self.sequence_length = sequence_length

    def encode(self, first, second=None):
        words = [elmo_data.split_words(text) for text in first]
        if second is not None:  # <S> A </S> <S> B </S>: each text a sentence of its own
            words = [a + [elmo_data.END_SENTENCE, elmo_data.BEGIN_SENTENCE] + elmo_data.split_words(b)
                     for a, b in zip(words, second)]
        return {"character_ids": elmo_data.character_ids(words, max_tokens=self.sequence_length)}


class PresetTokenizer:
    """The tokenizer saved in a preset submission, loaded by its family's `load_tokenizer`."""

    def __init__(self, folder, family, sequence_length):
        self.folder = folder
        self.family = family
        self.sequence_length = sequence_length
        digest = hashlib.sha256(f"{family.name}|{sequence_length}".encode())
        for name in sorted(os.listdir(folder)):
            if name not in MODEL_ONLY_FILES and os.path.isfile(os.path.join(folder, name)):
                digest.update(name.encode() + file_digest(os.path.join(folder, name)).encode())
        self.fingerprint = digest.hexdigest()[:16]
        self._encoder = None

    def encoder(self):
        if self._encoder is None:  # keras-hub's tokenizers: TensorFlow from here on
            if self.family.load_tokenizer is None:
                self._encoder = CharacterEncoder(self.sequence_length)
            else:
                self._encoder = self.family.load_tokenizer(self.folder, self.sequence_length)
        return self._encoder

    def vocabulary_size(self):
        return self.encoder().vocabulary_size

    def encode(self, first, second=None):
        return self.encoder().encode(first, second)


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on the file `path` (created if absent) while inside."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_encode(tokenizer, examples, data_digest, cache_dir, name):
    """Arrays for `examples` read from data with digest `data_digest`, from `<cache_dir>/<name>-<key>.npz` when there.

    `tokenizer`: a `PairEncoder` or `PresetTokenizer` (anything with `fingerprint` and `encode`).
    """
    key = hashlib.sha256(f"{tokenizer.fingerprint}|{data_digest}|{len(examples)}".encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{name}-{key}.npz")
    os.makedirs(cache_dir, exist_ok=True)
    with exclusive(path + ".lock"):  # another driver may be writing this entry
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as stored:
                arrays = {array: stored[array] for array in stored.files}
        else:
            first = [text[0] for text in examples.texts]
            second = [text[1] for text in examples.texts] if len(examples.texts[0]) > 1 else None
            arrays = dict(tokenizer.encode(first, second), index=examples.index.astype(str))
            if examples.labels is not None:
                arrays["labels"] = examples.labels
            partial = path + ".partial.npz"  # an interrupted run never leaves half a file
            np.savez_compressed(partial, **arrays)
            os.replace(partial, path)
    if "padding_mask" in arrays:
        arrays["padding_mask"] = arrays["padding_mask"].astype("int32")
    return arrays
