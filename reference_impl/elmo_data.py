"""ELMo's data pipeline: character ids, the word vocabulary, language-model targets, batches.

1. Characters: every token becomes 50 character ids (its UTF-8 bytes between
   begin- and end-of-word markers), and each sentence gets begin- and
   end-of-sentence tokens: bilm-tf's 262-symbol scheme (`character_ids`).
2. Words: the pretraining softmax predicts ids of a word vocabulary
   (`build_word_vocabulary`, `word_ids`), next word forwards and previous
   word backwards (`language_model_targets`).
3. `LengthBatches`: sentences batched with others of similar length.

Everything here is numpy; the model is in `reference_impl.elmo`.
"""

import re
from collections import Counter

import keras
import numpy as np

# --------------------------------------------------------------------------
# 1. Character ids (bilm-tf's inventory, shifted by one so 0 is padding)
# --------------------------------------------------------------------------

MAX_CHARACTERS_PER_TOKEN = 50
# Bytes are 0..255; then the markers, as in bilm-tf. Every id is stored + 1,
# so that 0 means "no character" (padding): 262 symbols in all.
BEGIN_SENTENCE_CHARACTER = 256
END_SENTENCE_CHARACTER = 257
BEGIN_WORD_CHARACTER = 258
END_WORD_CHARACTER = 259
PADDING_CHARACTER = 260
NUM_CHARACTERS = 262
BEGIN_SENTENCE, END_SENTENCE = "<S>", "</S>"


def token_character_ids(token):
    """One token -> [50] int32: begin-of-word, its UTF-8 bytes (cut at 48), end-of-word, padding."""
    if token == BEGIN_SENTENCE:
        body = [BEGIN_SENTENCE_CHARACTER]
    elif token == END_SENTENCE:
        body = [END_SENTENCE_CHARACTER]
    else:
        body = list(token.encode("utf-8"))[: MAX_CHARACTERS_PER_TOKEN - 2]
    ids = [BEGIN_WORD_CHARACTER, *body, END_WORD_CHARACTER]
    ids += [PADDING_CHARACTER] * (MAX_CHARACTERS_PER_TOKEN - len(ids))
    return np.array(ids, "int32") + 1


def split_words(text):
    """Whitespace and punctuation split, the granularity ELMo's word vocabulary uses."""
    return re.findall(r"\w+|[^\w\s]", text)


def with_sentence_markers(sentences):
    return [[BEGIN_SENTENCE, *sentence, END_SENTENCE] for sentence in sentences]


def character_ids(sentences, max_tokens=None):
    """Token lists -> [B, T, 50] int32 with <S> and </S> added; padding tokens are all 0.

    T is the longest sentence + 2, or `max_tokens` (longer sentences are cut,
    keeping </S>).
    """
    sentences = with_sentence_markers(sentences)
    length = max_tokens or max(len(s) for s in sentences)
    ids = np.zeros((len(sentences), length, MAX_CHARACTERS_PER_TOKEN), "int32")
    for row, sentence in enumerate(sentences):
        if len(sentence) > length:
            sentence = sentence[: length - 1] + [END_SENTENCE]
        for column, token in enumerate(sentence):
            ids[row, column] = token_character_ids(token)
    return ids


# Word ids for the language-model targets: 0 is padding.
WORD_PADDING, WORD_UNKNOWN = "<pad>", "<unk>"


def build_word_vocabulary(sentences, vocabulary_size):
    """The `vocabulary_size` most frequent words, after <pad>, <unk>, <S> and </S>."""
    counts = Counter(word for sentence in sentences for word in sentence)
    specials = [WORD_PADDING, WORD_UNKNOWN, BEGIN_SENTENCE, END_SENTENCE]
    words = [w for w, _ in counts.most_common() if w not in specials]
    return specials + words[: vocabulary_size - len(specials)]


def word_ids(sentences, vocabulary, max_tokens=None):
    """Token lists -> [B, T] int32 aligned with `character_ids` (same markers and cut)."""
    index = {word: i for i, word in enumerate(vocabulary)}
    unknown = index[WORD_UNKNOWN]
    sentences = with_sentence_markers(sentences)
    length = max_tokens or max(len(s) for s in sentences)
    ids = np.zeros((len(sentences), length), "int32")
    for row, sentence in enumerate(sentences):
        if len(sentence) > length:
            sentence = sentence[: length - 1] + [END_SENTENCE]
        ids[row, : len(sentence)] = [index.get(word, unknown) for word in sentence]
    return ids


def language_model_targets(word_ids_):
    """y and sample weights for `ELMoPretrainer`: next word forwards, previous word backwards."""
    word_ids_ = np.asarray(word_ids_)
    forward = np.zeros_like(word_ids_)
    forward[:, :-1] = word_ids_[:, 1:]
    backward = np.zeros_like(word_ids_)
    # Only real positions predict: a padding position gets no target.
    backward[:, 1:] = word_ids_[:, :-1] * (word_ids_[:, 1:] != 0)
    y = {"forward_logits": forward, "backward_logits": backward}
    weights = {name: (target != 0).astype("float32") for name, target in y.items()}
    return y, weights


class LengthBatches(keras.utils.PyDataset):
    """Batches of sentences of similar length, each cut to its longest (rounded up to a multiple of 8).

    Padding every sentence to one length wastes most of an LSTM's work on
    short sentences (SST-2's training sentences average 12 tokens with their
    markers, against 32 padded). `x`, `y` and `sample_weight` are arrays or
    dicts of arrays with one row per sentence; arrays of two or more
    dimensions have tokens on axis 1 and are cut, the others (labels) are
    not. `lengths` counts each sentence's tokens, markers included. The
    order of the batches is shuffled every epoch; multiples of 8 keep the
    number of distinct shapes, and so of compiled functions, small.
    """

    def __init__(self, x, lengths, batch_size, y=None, sample_weight=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.arrays = (x, y, sample_weight)
        self.lengths = np.asarray(lengths)
        self.rng = np.random.default_rng(seed)
        # Stable sort by length after a shuffle: equal lengths mix across epochs' batches.
        order = self.rng.permutation(len(self.lengths))
        order = order[np.argsort(self.lengths[order], kind="stable")]
        self.batches = [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
        self.on_epoch_end()

    def __len__(self):
        return len(self.batches)

    def cut_length(self, rows):
        return int(-(-self.lengths[rows].max() // 8) * 8)

    def __getitem__(self, index):
        rows = self.batches[index]
        length = self.cut_length(rows)

        def cut(array):
            if array is None:
                return None
            if isinstance(array, dict):
                return {name: cut(value) for name, value in array.items()}
            return array[rows, :length] if array.ndim >= 2 else array[rows]

        x, y, sample_weight = (cut(a) for a in self.arrays)
        return (x,) if y is None else (x, y) if sample_weight is None else (x, y, sample_weight)

    def on_epoch_end(self):
        self.rng.shuffle(self.batches)
        # Keras's TensorFlow adapter takes the input signature from the first
        # two batches: give them different lengths, so the token axis stays open.
        lengths = [self.cut_length(rows) for rows in self.batches]
        other = next((i for i, length in enumerate(lengths) if length != lengths[0]), None)
        if other is not None:
            self.batches[1], self.batches[other] = self.batches[other], self.batches[1]
