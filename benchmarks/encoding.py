"""Tokenization to integer arrays, cached as .npz so fine-tuning needs no TensorFlow.

Each submission's own tokenizer packs the texts:
- `PresetTokenizer`: the family's encoder loaded from the preset folder
  (`reference_impl.families`: WordPiece `[CLS] A [SEP] B [SEP]`, byte-level
  BPE `<s> A </s></s> B </s>` or GPT-2's `A <|endoftext|> B`, SentencePiece),
  giving `token_ids`, `segment_ids`, `padding_mask`; for ELMo, `character_ids`
  [N, T, 50] of the words (a pair as `<S> A </S> <S> B </S>`);
- `TextToTextTokenizer`: a text-to-text (T5) preset's SentencePiece encoder;
  each example written as T5 writes its task, "sst2 sentence: ...", the
  label as a word or STS-B's score as a number
  (`reference_impl.text_to_text`), giving `encoder_token_ids`,
  `encoder_padding_mask`, and where there are labels `decoder_token_ids`,
  `decoder_padding_mask`, `target_ids` and `target_mask`; it also reads the
  model's answers back as predictions (`predictions`);
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

from reference_impl import elmo_data, text_to_text, tokenizers

# Preset files that are not the tokenizer's: changing them leaves the token arrays valid.
MODEL_ONLY_FILES = ("model.weights.h5", "metadata.json")


def file_digest(path):
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class SubmissionTokenizer:
    """What the runner asks of a submission's tokenizer: a task's arrays, and the model's outputs read back.

    Subclasses set `fingerprint` (a digest of the tokenizer's files, computed
    without TensorFlow) and build their encoder lazily in `encoder()`.
    """

    def encode(self, first, second=None):
        return self.encoder().encode(first, second)

    def encode_task(self, task_name, examples):
        """Arrays of a task's examples, each one text or a pair, packed as the encoder packs them."""
        first = [text[0] for text in examples.texts]
        second = [text[1] for text in examples.texts] if len(examples.texts[0]) > 1 else None
        return self.encode(first, second)

    def decoding(self, task_name):
        """The `text_to_text.greedy_answers` settings of a text-to-text model; None: the model predicts directly."""
        return None

    def predictions(self, task_name, outputs):
        """The model's outputs on a task as class ids or scores (here they are already)."""
        return outputs


class PairEncoder(SubmissionTokenizer):
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


class PresetTokenizer(SubmissionTokenizer):
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


class TaskEncodingError(ValueError):
    """A submission's tokenizer cannot encode a task (a text-to-text one that cannot write a label word)."""


class TextToTextTokenizer(PresetTokenizer):
    """A text-to-text (T5) preset's tokenizer: inputs and targets as T5 writes each task, answers read back."""

    def target_length(self, task_name):
        try:
            return text_to_text.target_length(self.encoder(), task_name)
        except ValueError as error:  # a label word the tokenizer cannot write
            raise TaskEncodingError(f"{self.folder}: {error}") from None

    def encode_task(self, task_name, examples):
        inputs, targets = text_to_text.glue_as_text(task_name, examples.texts, examples.labels)
        if targets is None:  # a test split: the inputs alone
            return text_to_text.input_arrays(self.encoder(), inputs, self.sequence_length)
        x, target_ids, target_mask = text_to_text.seq2seq_arrays(
            self.encoder(), inputs, targets, self.sequence_length, self.target_length(task_name))
        return dict(x, target_ids=target_ids, target_mask=target_mask)

    def decoding(self, task_name):
        """T5's convention: the pad token starts an answer, the end token (</s>) ends it."""
        encoder = self.encoder()
        return {"start_token_id": encoder.pad_token_id, "end_token_id": encoder.sep_token_id,
                "max_length": 1 + self.target_length(task_name)}

    def predictions(self, task_name, outputs):
        """Answer token ids -> text -> class ids (`text_to_text.NO_LABEL` for no label word) or STS-B scores."""
        # Loaded afresh: seeding TensorFlow, as each job run in this process does, frees the kernel
        # holding the sentencepiece model of the encoder loaded before (reloading takes milliseconds).
        self._encoder = None
        return text_to_text.read_answers(task_name, text_to_text.answer_texts(self.encoder(), outputs))


def preset_tokenizer(folder, family, sequence_length):
    """The tokenizer of a preset submission of `family`: text to text where the family's head writes text."""
    kind = TextToTextTokenizer if family.head == "text_to_text" else PresetTokenizer
    return kind(folder, family, sequence_length)


@contextlib.contextmanager
def exclusive(path):
    """Hold an exclusive lock on the file `path` (created if absent) while inside."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_encode(tokenizer, task_name, examples, data_digest, cache_dir, name):
    """Arrays for `examples` of `task_name` read from data with digest `data_digest`, from
    `<cache_dir>/<name>-<key>.npz` when there.

    `tokenizer`: a `SubmissionTokenizer` (`PairEncoder`, `PresetTokenizer`, `TextToTextTokenizer`).
    """
    key = hashlib.sha256(f"{tokenizer.fingerprint}|{data_digest}|{len(examples)}".encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"{name}-{key}.npz")
    os.makedirs(cache_dir, exist_ok=True)
    with exclusive(path + ".lock"):  # another driver may be writing this entry
        if os.path.exists(path):
            with np.load(path, allow_pickle=False) as stored:
                arrays = {array: stored[array] for array in stored.files}
        else:
            arrays = dict(tokenizer.encode_task(task_name, examples), index=examples.index.astype(str))
            if examples.labels is not None:
                arrays["labels"] = examples.labels
            partial = path + ".partial.npz"  # an interrupted run never leaves half a file
            np.savez_compressed(partial, **arrays)
            os.replace(partial, path)
    if "padding_mask" in arrays:
        arrays["padding_mask"] = arrays["padding_mask"].astype("int32")
    return arrays
