"""Static word vectors: skip-gram with negative sampling learns from shared contexts; 1-of-N cannot;
ELMo's LSTM layers give one word different vectors in different sentences."""

import keras
import numpy as np
import pytest

from reference_impl.corpus import offline_corpus
from reference_impl.elmo import ELMoBiLM
from reference_impl.word_vectors import (
    SkipGram,
    WordVocabulary,
    analogy,
    compile_skip_gram,
    corpus_sentences,
    cosine_similarities,
    nearest_neighbours,
    one_hot_vectors,
    skip_gram_examples,
    static_and_contextual_similarity,
)

pytestmark = pytest.mark.backend


@pytest.fixture(scope="module")
def corpus():
    sentences = corpus_sentences(offline_corpus())
    vocabulary = WordVocabulary(sentences, min_count=5)
    return vocabulary, vocabulary.ids(sentences)


@pytest.fixture(scope="module")
def trained(corpus):
    vocabulary, ids = corpus
    keras.utils.set_random_seed(0)
    model = compile_skip_gram(SkipGram(len(vocabulary), embedding_dim=32), learning_rate=0.01)
    x, y = skip_gram_examples(ids, vocabulary, window=4, num_negative=5, seed=0)
    fresh = skip_gram_examples(ids, vocabulary, window=4, num_negative=5, seed=1)  # another draw
    before = model.evaluate(*fresh, batch_size=4096, verbose=0)
    model.fit(x, y, batch_size=1024, epochs=2, verbose=0)
    after = model.evaluate(*fresh, batch_size=4096, verbose=0)
    return model.word_vectors(), before, after


def context_sharing_pairs(vocabulary, ids, top=200, window=2, count=30):
    """The `count` pairs among the `top` most frequent words whose co-occurrence rows (positive PMI
    within `window`) are most alike: words sharing contexts, measured from counts alone."""
    cooccurrence = np.zeros((top, len(vocabulary)))
    for sentence in ids:
        for position, word in enumerate(sentence):
            if word < top:
                neighbours = np.r_[sentence[max(0, position - window):position],
                                   sentence[position + 1:position + 1 + window]]
                np.add.at(cooccurrence[word], neighbours, 1)
    expected = cooccurrence.sum(1, keepdims=True) * cooccurrence.sum(0, keepdims=True) / cooccurrence.sum()
    ppmi = np.maximum(np.log(np.maximum(cooccurrence, 1e-12) / np.maximum(expected, 1e-12)), 0)
    unit = ppmi / np.linalg.norm(ppmi, axis=1, keepdims=True)
    similarity = np.triu(unit @ unit.T, k=1)
    flat = np.argsort(-similarity, axis=None)[:count]
    return np.column_stack(np.unravel_index(flat, similarity.shape))


def mean_cosine(vectors, pairs):
    return np.mean([cosine_similarities(vectors[a][None], vectors[b])[0] for a, b in pairs])


def test_skip_gram_loss_falls_and_words_sharing_contexts_end_up_closer(corpus, trained):
    vocabulary, ids = corpus
    vectors, before, after = trained
    assert after < before - 0.5, (before, after)
    sharing = context_sharing_pairs(vocabulary, ids)
    rng = np.random.default_rng(0)
    random_pairs = rng.integers(0, 200, size=(500, 2))
    random_pairs = random_pairs[random_pairs[:, 0] != random_pairs[:, 1]]
    assert mean_cosine(vectors, sharing) > mean_cosine(vectors, random_pairs) + 0.2
    # 1-of-N cannot tell them apart: every two different words are orthogonal.
    one_hot = one_hot_vectors(len(vocabulary))
    assert mean_cosine(one_hot, sharing) == mean_cosine(one_hot, random_pairs) == 0.0


def test_nearest_neighbours_and_analogy_rank_by_cosine(corpus, trained):
    vocabulary, _ = corpus
    vectors, _, _ = trained
    neighbours = nearest_neighbours(vectors, vocabulary, "true", k=5)
    assert "true" not in [word for word, _ in neighbours]
    scores = [score for _, score in neighbours]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(np.max(np.delete(
        cosine_similarities(vectors, vectors[vocabulary.index["true"]]), vocabulary.index["true"])), abs=1e-6)
    # On vectors built so that a - b + c lands on d, the probe finds d.
    planted = one_hot_vectors(len(vocabulary))
    a, b, c, d = (vocabulary.index[w] for w in ("class", "function", "list", "string"))
    planted[d] = planted[a] - planted[b] + planted[c]
    assert analogy(planted, vocabulary, "class", "function", "list", k=1)[0][0] == "string"
    with pytest.raises(KeyError, match="not in the vocabulary"):
        nearest_neighbours(vectors, vocabulary, "zyzzyva")


def test_static_vector_is_the_same_in_two_sentences_elmos_is_not(corpus, trained):
    vocabulary, _ = corpus
    vectors, _, _ = trained
    keras.utils.set_random_seed(0)
    bilm = ELMoBiLM.from_name("tiny", dropout=0.0)
    first = "the value of the loop variable is unchanged".split()
    second = "a return statement leaves the value on the stack".split()
    similarity = static_and_contextual_similarity("value", first, second, vectors, vocabulary, bilm)
    assert similarity["static"] == pytest.approx(1.0)
    assert similarity["elmo_layer_0"] == pytest.approx(1.0, abs=1e-6)  # character-based, no context
    assert similarity["elmo_layer_1"] < 0.999 and similarity["elmo_layer_2"] < 0.999
