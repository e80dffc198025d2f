"""Static word vectors: 1-of-N encodings and skip-gram with negative sampling (Mikolov et al., 2013).

A 1-of-N (one-hot) encoding gives word i the i-th unit vector: every two
different words are orthogonal (cosine 0), so "cat" is as far from "dog"
as from "of". Skip-gram learns a dense vector per word instead, by
predicting the words around it: words used in the same contexts get
similar vectors (the distributional hypothesis).

Skip-gram with negative sampling (SGNS): for a centre word c and a word o
seen within `window` words of it, raise sigma(v_c . u_o); for k "negative"
words n drawn from the noise distribution P(w) ~ count(w)^0.75 (flatter
than the unigram, so rare words are drawn more often), lower sigma(v_c . u_n):

    loss = -log sigma(v_c . u_o) - sum_n log sigma(-v_c . u_n)

v (`word_embedding`) is the word's vector; u (`context_embedding`) its
vector as a context, discarded after training. As in word2vec, the window
size is drawn per centre word (nearer words count more) and frequent words
are subsampled (kept with probability sqrt(t / f) where their frequency f >
t), which removes most "the"/"of" pairs.

Both are *static*: one vector per word type, whatever the sentence.
`static_and_contextual_similarity` shows what ELMo changes: its token layer
is static too, its LSTM layers are not.
"""

from collections import Counter

import keras
import numpy as np
from keras import ops

from reference_impl.elmo_data import character_ids, split_words
from reference_impl.layers import register


def corpus_sentences(documents):
    """Documents -> lower-cased word lists, one per line (the offline corpus's paragraphs)."""
    return [split_words(line.lower()) for document in documents for line in document.splitlines()
            if line.strip()]


class WordVocabulary:
    """Words seen at least `min_count` times, most frequent first, with their counts."""

    def __init__(self, sentences, min_count=5):
        counts = Counter(word for sentence in sentences for word in sentence)
        self.words = [word for word, count in counts.most_common() if count >= min_count]
        if not self.words:
            raise ValueError(f"No word occurs {min_count} times; lower min_count or add text.")
        self.index = {word: i for i, word in enumerate(self.words)}
        self.counts = np.array([counts[word] for word in self.words], "float64")

    def __len__(self):
        return len(self.words)

    def ids(self, sentences):
        """Word lists -> id arrays; out-of-vocabulary words are dropped (as word2vec does)."""
        return [np.array([self.index[w] for w in sentence if w in self.index], "int32")
                for sentence in sentences]

    def noise_distribution(self, power=0.75):
        """P(w) ~ count(w)^power: the distribution negatives are drawn from."""
        weights = self.counts ** power
        return weights / weights.sum()


def skip_gram_examples(sentence_ids, vocabulary, window=5, num_negative=5, subsample=1e-3, seed=0):
    """(x, y) for `SkipGram`: every (centre, context) pair with `num_negative` noise words.

    x = {"center": [N], "contexts": [N, 1 + k]} (the true context first);
    y = [N, 1 + k] labels, 1 then k zeros. Call again for fresh negatives.
    """
    rng = np.random.default_rng(seed)
    frequency = vocabulary.counts / vocabulary.counts.sum()
    keep_probability = np.minimum(1.0, np.sqrt(subsample / frequency))
    centers, contexts = [], []
    for ids in sentence_ids:
        ids = ids[rng.random(len(ids)) < keep_probability[ids]]
        spans = rng.integers(1, window + 1, size=len(ids))  # word2vec's shrunk window
        for position, span in enumerate(spans):
            neighbours = np.r_[ids[max(0, position - span):position], ids[position + 1:position + 1 + span]]
            centers.extend([ids[position]] * len(neighbours))
            contexts.extend(neighbours)
    centers, contexts = np.array(centers, "int32"), np.array(contexts, "int32")
    negatives = rng.choice(len(vocabulary), size=(len(centers), num_negative),
                           p=vocabulary.noise_distribution()).astype("int32")
    labels = np.zeros((len(centers), 1 + num_negative), "float32")
    labels[:, 0] = 1.0
    return {"center": centers, "contexts": np.column_stack([contexts, negatives])}, labels


@register
class SkipGram(keras.Model):
    """Logits v_c . u_o for a centre word and 1 + k candidate context words: [B, 1 + k].

    Train with binary cross-entropy from logits on `skip_gram_examples`
    (`compile_skip_gram`). Word vectors: `word_vectors()`.
    """

    def __init__(self, vocabulary_size, embedding_dim=50, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        # word2vec's initialisation: small random word vectors, zero context vectors.
        scale = 0.5 / embedding_dim
        self.word_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, embeddings_initializer=keras.initializers.RandomUniform(-scale, scale),
            name="word_embedding")
        self.context_embedding = keras.layers.Embedding(vocabulary_size, embedding_dim,
                                                        embeddings_initializer="zeros",
                                                        name="context_embedding")

    def call(self, inputs):
        center = self.word_embedding(inputs["center"])        # [B, D]
        contexts = self.context_embedding(inputs["contexts"])  # [B, 1 + k, D]
        return ops.einsum("bd,bkd->bk", center, contexts)

    def word_vectors(self):
        """[V, D] NumPy: one static vector per word."""
        return ops.convert_to_numpy(self.word_embedding.embeddings)

    def get_config(self):
        return {"name": self.name, "vocabulary_size": self.vocabulary_size,
                "embedding_dim": self.embedding_dim}


def compile_skip_gram(model, learning_rate=0.01):
    """Adam on the SGNS loss: binary cross-entropy, summed over the 1 + k candidates."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=lambda y, logits: ops.sum(keras.losses.binary_crossentropy(
                      y[..., None], logits[..., None], from_logits=True), axis=-1))
    return model


def one_hot_vectors(vocabulary_size):
    """The 1-of-N baseline as vectors [V, V]: word i is the i-th unit vector."""
    return np.eye(vocabulary_size, dtype="float32")


def cosine_similarities(vectors, query):
    """Cosine of `query` [D] with every row of `vectors` [V, D]."""
    norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query)
    return vectors @ query / np.maximum(norms, 1e-12)


def nearest_neighbours(vectors, vocabulary, word, k=5):
    """The k words whose vectors have the highest cosine with `word`'s: [(word, cosine)]."""
    if word not in vocabulary.index:
        raise KeyError(f"{word!r} is not in the vocabulary ({len(vocabulary)} words seen "
                       f"at least min_count times).")
    return _ranked(cosine_similarities(vectors, vectors[vocabulary.index[word]]), vocabulary, {word}, k)


def analogy(vectors, vocabulary, a, b, c, k=5):
    """Words nearest a - b + c (cosine), leaving out a, b and c: "king" - "man" + "woman" ~ "queen"."""
    for word in (a, b, c):
        if word not in vocabulary.index:
            raise KeyError(f"{word!r} is not in the vocabulary.")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    query = unit[vocabulary.index[a]] - unit[vocabulary.index[b]] + unit[vocabulary.index[c]]
    return _ranked(cosine_similarities(vectors, query), vocabulary, {a, b, c}, k)


def _ranked(similarities, vocabulary, excluded, k):
    order = [i for i in np.argsort(-similarities) if vocabulary.words[i] not in excluded]
    return [(vocabulary.words[i], float(similarities[i])) for i in order[:k]]


def static_and_contextual_similarity(word, first, second, vectors, vocabulary, bilm):
    """How alike `word`'s vectors are in two sentences (word lists), static against contextual.

    Returns {"static": cosine of the skip-gram vectors (always 1: one
    vector per word), "elmo_layer_0": ELMo's character-based token layer
    (also static), "elmo_layer_1", "elmo_layer_2": its LSTM layers, which
    read the whole sentence and so differ}.
    """
    static = vectors[vocabulary.index[word]]
    layers = bilm.predict({"character_ids": character_ids([first, second])}, verbose=0)["elmo_layers"]
    # character_ids adds <S>: the word's position moves by one.
    in_first, in_second = first.index(word) + 1, second.index(word) + 1
    result = {"static": float(cosine_similarities(static[None], static)[0])}
    for layer in range(layers.shape[1]):
        a, b = layers[0, layer, in_first], layers[1, layer, in_second]
        result[f"elmo_layer_{layer}"] = float(cosine_similarities(a[None], b)[0])
    return result
