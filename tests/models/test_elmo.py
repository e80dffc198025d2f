"""ELMo: character ids, shapes, parameter count, scalar mix, causality, pretraining, frozen use."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.elmo import (
    FULL_FILTERS,
    ELMoBiLM,
    ELMoClassifier,
    ELMoPretrainer,
    ScalarMix,
    compile_elmo_pretraining,
)
from reference_impl.elmo_data import (
    NUM_CHARACTERS,
    LengthBatches,
    build_word_vocabulary,
    character_ids,
    language_model_targets,
    split_words,
    word_ids,
)

pytestmark = pytest.mark.backend

# For a few hundred small steps XLA compilation under TensorFlow costs more
# than it saves; JAX without jit would run op by op.
JIT_COMPILE = keras.backend.backend() != "tensorflow"


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_character_ids_follow_bilm_tf():
    ids = character_ids([["Hi", "café"], ["x" * 60]])
    assert ids.shape == (2, 4, 50) and ids.dtype == np.int32
    # Stored ids are bilm-tf's + 1: <bow>=259, <eow>=260, <pad>=261, <S>=257, </S>=258.
    np.testing.assert_array_equal(ids[0, 0, :4], [259, 257, 260, 261])  # <S>
    np.testing.assert_array_equal(ids[0, 1, :5], [259, 73, 106, 260, 261])  # "Hi": bytes 72, 105
    np.testing.assert_array_equal(ids[0, 2, :7], [259, 100, 98, 103, 196, 170, 260])  # é is 2 bytes
    np.testing.assert_array_equal(ids[0, 3, :4], [259, 258, 260, 261])  # </S>
    assert (ids[0, 1, 4:] == 261).all()
    # A long word keeps its first 48 bytes between the markers.
    np.testing.assert_array_equal(ids[1, 1], [259] + [ord("x") + 1] * 48 + [260])
    assert (ids[1, 3] == 0).all()  # padding token: all zeros
    assert ids.max() < 262


def test_cut_sentences_keep_end_marker_and_word_ids_align():
    sentences = [["a", "b", "c", "d"], ["b"]]
    chars = character_ids(sentences, max_tokens=4)
    vocabulary = build_word_vocabulary(sentences, vocabulary_size=6)
    assert vocabulary[:4] == ["<pad>", "<unk>", "<S>", "</S>"]
    words = word_ids(sentences, vocabulary, max_tokens=4)
    index = {w: i for i, w in enumerate(vocabulary)}
    assert list(words[0]) == [2, index["a"], index["b"], 3]
    np.testing.assert_array_equal(chars[0, 3, :3], [259, 258, 260])  # </S> kept at the cut
    assert words[1, 3] == 0 and (chars[1, 3] == 0).all()
    y, weights = language_model_targets(words)
    np.testing.assert_array_equal(y["forward_logits"][1], [index["b"], 3, 0, 0])
    np.testing.assert_array_equal(y["backward_logits"][1], [0, 2, index["b"], 0])
    np.testing.assert_array_equal(weights["backward_logits"][1], [0, 1, 1, 0])


@pytest.fixture(scope="module")
def tiny_bilm():
    keras.utils.set_random_seed(0)
    return ELMoBiLM.from_name("tiny", dropout=0.0)


def test_layer_shapes_and_duplicated_token_layer(tiny_bilm):
    ids = character_ids([["the", "cat", "sat"], ["a", "dog"]])
    out = tiny_bilm({"character_ids": ids})
    assert out["elmo_layers"].shape == (2, 3, 5, 64)
    assert out["forward_output"].shape == out["backward_output"].shape == (2, 5, 32)
    layers = numpy(out["elmo_layers"])
    np.testing.assert_array_equal(layers[:, 0, :, :32], layers[:, 0, :, 32:])
    np.testing.assert_array_equal(numpy(out["token_mask"]), [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    np.testing.assert_allclose(layers[:, 2, :, :32], numpy(out["forward_output"]), atol=1e-6)


def count_bilm_parameters(filters=FULL_FILTERS, character_dim=16, num_highway=2,
                          projection_dim=512, lstm_units=4096, num_lstm_layers=2, **unused):
    """The biLM's weights by part, from its config; no model is built.

    What is counted: the character embedding (262 x 16), the CNN, the highway
    layers, the projection and the 2 x `num_lstm_layers` LSTMP layers. Not
    counted: the word softmax (used only in pretraining) and a task's scalar
    mix. For the full config this is the 93.6M of the ELMo paper and AllenNLP.
    """
    total_filters = sum(count for _, count in filters)
    lstm_layer = ((projection_dim + projection_dim) * 4 * lstm_units  # input and recurrent kernels
                  + 4 * lstm_units                                  # gate biases
                  + lstm_units * projection_dim)                    # output projection, no bias
    parts = {
        "character_embedding": NUM_CHARACTERS * character_dim,
        "convolutions": sum(width * character_dim * count + count for width, count in filters),
        "highway": num_highway * 2 * (total_filters * total_filters + total_filters),
        "projection": total_filters * projection_dim + projection_dim,
        "lstms": 2 * num_lstm_layers * lstm_layer,
    }
    return {**parts, "total": sum(parts.values())}


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_parameter_formula_matches_built_model(name):
    bilm = ELMoBiLM.from_name(name)
    assert count_bilm_parameters(**bilm.get_config())["total"] == bilm.count_params()


def test_full_size_parameter_count_is_the_published_93_6_million():
    parts = count_bilm_parameters(**ELMoBiLM.sizes["full"])
    assert parts["total"] == 93_600_864
    assert round(parts["total"] / 1e6, 1) == 93.6
    assert parts["lstms"] == 4 * 18_890_752 and parts["highway"] == 16_785_408


def test_scalar_mix_weights_sum_to_one_and_gamma_scales():
    rng = np.random.default_rng(0)
    layers = rng.normal(size=(2, 3, 4, 6)).astype("float32")
    mix = ScalarMix()
    mix.build(layers.shape)
    mix.layer_weights.assign([0.3, -1.0, 2.0])
    weights = numpy(mix.mixing_weights())
    assert abs(weights.sum() - 1.0) < 1e-6 and (weights > 0).all()
    expected = np.einsum("l,blti->bti", weights, layers)
    np.testing.assert_allclose(numpy(mix(layers)), expected, atol=1e-5)
    mix.gamma.assign(2.5)
    np.testing.assert_allclose(numpy(mix(layers)), 2.5 * expected, atol=1e-5)


@settings(max_examples=6, deadline=None)
@given(
    words=st.lists(st.sampled_from(["the", "cat", "sat", "on", "a", "mat", "!", "dog"]),
                   min_size=6, max_size=6),
    position=st.integers(1, 6),
    replacement=st.sampled_from(["zebra", "ran", "?"]),
)
def test_forward_lm_never_sees_later_tokens_nor_backward_lm_earlier(tiny_bilm, words, position,
                                                                    replacement):
    changed = list(words)
    changed[position - 1] = replacement  # position counts the <S> marker at 0
    layers = numpy(tiny_bilm({"character_ids": character_ids([words, changed])})["elmo_layers"])
    before, after = layers[:1, 1:], layers[1:, 1:]  # the two LSTM layers
    forward, backward = slice(0, 32), slice(32, 64)
    np.testing.assert_allclose(after[:, :, :position, forward], before[:, :, :position, forward],
                               atol=1e-6)
    np.testing.assert_allclose(after[:, :, position + 1:, backward],
                               before[:, :, position + 1:, backward], atol=1e-6)
    if replacement != words[position - 1]:
        # Both directions do see the changed token from the other side.
        assert np.abs(after[..., position:, forward] - before[..., position:, forward]).max() > 1e-5
        assert np.abs(after[..., :position + 1, backward]
                      - before[..., :position + 1, backward]).max() > 1e-5


def test_backward_lm_starts_at_each_sentence_end_despite_padding(tiny_bilm):
    alone = numpy(tiny_bilm({"character_ids": character_ids([["a", "cat"]])})["elmo_layers"])
    padded = numpy(tiny_bilm({"character_ids": character_ids(
        [["a", "cat"], ["a", "much", "longer", "sentence", "here"]])})["elmo_layers"])
    np.testing.assert_allclose(padded[:1, :, :4], alone, atol=1e-5)


# Sampled softmax (64 of 400 words a step) learns more slowly per step.
# The full softmax's run is in make test-long (pytest.mark.long): the two take a minute.
@pytest.mark.parametrize("num_sampled, drop", [pytest.param(None, 1.0, id="full_softmax", marks=pytest.mark.long),
                                               pytest.param(64, 0.5, id="sampled_softmax")])
def test_pretraining_loss_falls_on_real_sentences(num_sampled, drop):
    from reference_impl.corpus import offline_corpus, split_sentences

    sentences = [split_words(s)[:18] for doc in offline_corpus()[:40] for s in split_sentences(doc)]
    sentences = [s for s in sentences if s][:256]
    vocabulary = build_word_vocabulary(sentences, vocabulary_size=400)
    x = {"character_ids": character_ids(sentences, max_tokens=20)}
    y, weights = language_model_targets(word_ids(sentences, vocabulary, max_tokens=20))
    keras.utils.set_random_seed(0)
    pretrainer = ELMoPretrainer(ELMoBiLM.from_name("tiny", dropout=0.0), len(vocabulary), num_sampled=num_sampled,
                                seed=0)
    compile_elmo_pretraining(pretrainer, learning_rate=5e-3, jit_compile=JIT_COMPILE)
    before = pretrainer.evaluate(x, y, sample_weight=weights, batch_size=128, verbose=0)
    pretrainer.fit(x, y, sample_weight=weights, batch_size=32, epochs=3, verbose=0)
    after = pretrainer.evaluate(x, y, sample_weight=weights, batch_size=128, verbose=0)
    before, after = np.atleast_1d(before)[0], np.atleast_1d(after)[0]
    # Evaluated with the full softmax in both modes. Start near log(400) = 6.0
    # (uniform guessing); the models learn word statistics.
    assert before > 5.5 and after < before - drop, (before, after)


def test_length_batches_cover_every_sentence_once_and_cut_only_padding():
    rng = np.random.default_rng(0)
    sentences = [["w"] * int(n) for n in rng.integers(1, 30, size=203)]
    ids = character_ids(sentences, max_tokens=32)
    y, weights = language_model_targets(word_ids(sentences, ["<pad>", "<unk>", "<S>", "</S>", "w"], 32))
    labels = np.arange(len(sentences))  # a sentence-level array: rows, never cut
    lengths = [len(s) + 2 for s in sentences]
    batches = LengthBatches({"character_ids": ids}, lengths, 16, labels, seed=1)
    seen = []
    for index in range(len(batches)):
        x, rows = batches[index]
        cut = x["character_ids"].shape[1]
        assert cut % 8 == 0
        assert cut >= max(lengths[r] for r in rows) and cut - 8 < max(lengths[r] for r in rows)
        np.testing.assert_array_equal(x["character_ids"], ids[rows, :cut])
        assert not ids[rows, cut:].any()  # only padding was dropped
        seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(sentences)))
    # Targets and weights are cut like the inputs; the order of batches changes between epochs.
    x, y_cut, w_cut = LengthBatches({"character_ids": ids}, lengths, 16, y, weights)[0]
    assert y_cut["forward_logits"].shape == w_cut["backward_logits"].shape == x["character_ids"].shape[:2]
    first = [batches[i][1].tolist() for i in range(len(batches))]
    batches.on_epoch_end()
    assert [batches[i][1].tolist() for i in range(len(batches))] != first
    # Keras's TensorFlow adapter reads the input shapes off the first two batches.
    assert batches[0][0]["character_ids"].shape[1] != batches[1][0]["character_ids"].shape[1]


def test_classifier_trains_on_length_batches(tiny_bilm):
    """Batches of several lengths in one fit (under TensorFlow, the token axis must stay open)."""
    sentences = [["good"] * n for n in range(1, 25)] * 4
    labels = np.arange(len(sentences)) % 2
    batches = LengthBatches({"character_ids": character_ids(sentences, 32)},
                            [len(s) + 2 for s in sentences], 8, labels, seed=3)
    assert len({batches[i][0]["character_ids"].shape[1] for i in range(len(batches))}) == 4
    classifier = ELMoClassifier(tiny_bilm, num_classes=2, hidden_units=8)
    classifier.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = classifier.fit(batches, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_unigram_softmax_bias_predicts_each_words_frequency():
    from reference_impl.corpus import offline_corpus, split_sentences

    sentences = [split_words(s) for doc in offline_corpus()[:20] for s in split_sentences(doc)]
    sentences = [s for s in sentences if s]
    vocabulary = build_word_vocabulary(sentences, vocabulary_size=300)
    ids = word_ids(sentences, vocabulary, max_tokens=24)
    pretrainer = ELMoPretrainer(ELMoBiLM.from_name("tiny"), len(vocabulary))
    pretrainer.set_unigram_softmax_bias(ids)
    counts = np.bincount(ids[ids != 0], minlength=len(vocabulary)) + 1.0
    np.testing.assert_allclose(numpy(keras.ops.softmax(pretrainer.softmax.bias)), counts / counts.sum(), rtol=1e-4)


def test_sampled_softmax_loss_equals_tensorflows():
    """Against tf.nn.sampled_softmax_loss given the same samples and expected counts."""
    import tensorflow as tf

    from reference_impl.elmo import log_uniform_probabilities, sampled_softmax_loss

    rng = np.random.default_rng(0)
    vocabulary, width, num_sampled = 50, 8, 12
    hidden = rng.normal(size=(2, 5, width)).astype("float32")
    kernel = rng.normal(size=(width, vocabulary)).astype("float32")
    bias = rng.normal(size=vocabulary).astype("float32")
    targets = rng.integers(0, vocabulary, size=(2, 5)).astype("int32")
    sampled = rng.integers(0, 20, size=num_sampled).astype("int32")
    sampled[0] = targets[0, 0]  # an accidental hit, to be removed
    # Our expected counts are those of TensorFlow's log-uniform sampler (with replacement).
    _, true_count, sampled_count = tf.random.log_uniform_candidate_sampler(
        targets.reshape(-1, 1).astype("int64"), 1, num_sampled, unique=False, range_max=vocabulary)
    np.testing.assert_allclose(num_sampled * numpy(log_uniform_probabilities(targets.reshape(-1), vocabulary)),
                               true_count.numpy()[:, 0], rtol=1e-5)
    expected = tf.nn.sampled_softmax_loss(
        weights=kernel.T, biases=bias, labels=targets.reshape(-1, 1).astype("int64"),
        inputs=hidden.reshape(-1, width), num_sampled=num_sampled, num_classes=vocabulary,
        sampled_values=(sampled.astype("int64"),
                        num_sampled * numpy(log_uniform_probabilities(targets.reshape(-1, 1), vocabulary)),
                        num_sampled * numpy(log_uniform_probabilities(sampled, vocabulary))),
        remove_accidental_hits=True)
    got = sampled_softmax_loss(hidden, targets, kernel, bias, sampled, vocabulary)
    np.testing.assert_allclose(numpy(got).reshape(-1), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_classifier_trains_the_mix_and_head_but_not_the_frozen_bilm(tiny_bilm):
    classifier = ELMoClassifier(tiny_bilm, num_classes=2, hidden_units=8)
    trainable = {w.path for w in classifier.trainable_weights}
    assert any("scalar_mix" in p for p in trainable)
    assert not any(w.path in trainable for w in tiny_bilm.weights)
    frozen_before = [numpy(w).copy() for w in tiny_bilm.weights]
    mix_before = numpy(classifier.scalar_mix.layer_weights).copy()
    classifier.compile(optimizer=keras.optimizers.Adam(1e-1),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       jit_compile=JIT_COMPILE)
    ids = character_ids([["good", "film"], ["bad", "film", "indeed"]] * 4)
    classifier.fit({"character_ids": ids}, np.array([1, 0] * 4), epochs=2, verbose=0)
    assert all(np.array_equal(b, numpy(w)) for b, w in zip(frozen_before, tiny_bilm.weights))
    assert not np.allclose(mix_before, numpy(classifier.scalar_mix.layer_weights))
