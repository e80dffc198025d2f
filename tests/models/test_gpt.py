"""GPT: keras-hub parity, causality, checkpoint import, fine-tuning heads, pretraining."""

import keras
import keras_hub
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference_impl.families import load_hugging_face
from reference_impl.gpt import (
    GPTBackbone,
    GPTCausalLM,
    GPTClassifier,
    GPTLabelWordClassifier,
    compile_causal_lm,
    flops_per_token,
    next_token_batches,
    perplexity,
    pretrain_causal_lm,
    unigram_perplexity,
)
from tests.models.parity import copy_keras_hub_gpt2

pytestmark = pytest.mark.backend

# For a few hundred small steps XLA compilation under TensorFlow costs more
# than it saves; JAX without jit would run op by op.
JIT_COMPILE = keras.backend.backend() != "tensorflow"

CONFIG = dict(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32,
              intermediate_dim=64, max_sequence_length=24, dropout=0.1)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def right_padded(batch, length, seed, vocabulary_size=CONFIG["vocabulary_size"]):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, length + 1, size=batch)
    lengths[0] = length
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(1, vocabulary_size, size=(batch, length)).astype("int32") * padding_mask
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def set_fused(backbone, fused):
    for block in backbone.transformer_layers:
        block.self_attention.use_fused_attention = fused


def test_matches_keras_hub_gpt2_backbone_after_copying_weights():
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.GPT2Backbone(**CONFIG)
    ours = GPTBackbone(**CONFIG)
    copy_keras_hub_gpt2(ours, theirs)
    inputs = right_padded(batch=3, length=16, seed=1)
    expected = numpy(theirs(inputs))
    for fused in (True, False):
        set_fused(ours, fused)
        error = np.max(np.abs(numpy(ours(inputs)) - expected))
        assert error < 1e-5, (fused, error)


def test_parameter_counts_equal_keras_hub():
    config = {**GPTBackbone.sizes["tiny"], "vocabulary_size": 50257}
    assert GPTBackbone(**config).count_params() == 3_324_736
    assert keras_hub.models.GPT2Backbone(**config).count_params() == 3_324_736
    # keras_hub.models.GPT2Backbone with this config also counts 124,439,808
    # (building a second 124M model here would double this test's time).
    assert GPTBackbone.from_name("base").count_params() == 124_439_808


CAUSAL_MODEL = None


def causal_model():
    global CAUSAL_MODEL
    if CAUSAL_MODEL is None:
        keras.utils.set_random_seed(0)
        CAUSAL_MODEL = GPTCausalLM(GPTBackbone(**{**CONFIG, "dropout": 0.0}))
    return CAUSAL_MODEL


@settings(max_examples=15, deadline=None)
@given(
    tokens=st.lists(st.integers(1, CONFIG["vocabulary_size"] - 1), min_size=12, max_size=12),
    position=st.integers(0, 10),
    replacements=st.lists(st.integers(1, CONFIG["vocabulary_size"] - 1), min_size=11, max_size=11),
    fused=st.booleans(),
)
def test_changing_later_tokens_never_changes_earlier_outputs(tokens, position, replacements, fused):
    model = causal_model()
    set_fused(model.backbone, fused)
    original = np.array([tokens], "int32")
    changed = original.copy()
    changed[0, position + 1:] = replacements[: 11 - position]
    mask = np.ones_like(original)
    before = numpy(model({"token_ids": original, "padding_mask": mask}))
    after = numpy(model({"token_ids": changed, "padding_mask": mask}))
    np.testing.assert_allclose(after[:, : position + 1], before[:, : position + 1], atol=1e-5)
    if (changed != original).any():
        # The check has teeth: the first changed position's own output moves.
        first = position + 1 + int(np.argmax(changed[0, position + 1:] != original[0, position + 1:]))
        assert np.abs(after[0, first] - before[0, first]).max() > 1e-4


def test_padding_does_not_change_real_token_outputs():
    model = causal_model()
    inputs = right_padded(batch=2, length=12, seed=2)
    inputs["padding_mask"][:] = 1
    inputs["padding_mask"][:, 8:] = 0
    before = numpy(model(inputs))[:, :8]
    inputs["token_ids"][:, 8:] = 5
    np.testing.assert_allclose(numpy(model(inputs))[:, :8], before, atol=1e-6)


def test_lm_head_is_the_token_table_transposed():
    model = causal_model()
    inputs = right_padded(batch=2, length=6, seed=3)
    hidden = numpy(model.backbone(inputs))
    table = numpy(model.backbone.token_embedding.embeddings)
    np.testing.assert_allclose(numpy(model(inputs)), hidden @ table.T, atol=1e-5)
    assert len(model.weights) == len(model.backbone.weights)  # no separate output matrix


def test_causal_lm_keras_file_round_trip(tmp_path):
    model = causal_model()
    inputs = right_padded(batch=2, length=10, seed=4)
    path = tmp_path / "gpt.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(numpy(restored(inputs)), numpy(model(inputs)), atol=1e-6)


def test_hugging_face_import_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hugging_face(tmp_path)


def test_label_word_classifier_reads_lm_logits_at_last_real_token():
    model = causal_model()
    labels = [7, 3, 50]
    scorer = GPTLabelWordClassifier(model.backbone, labels)
    inputs = right_padded(batch=3, length=9, seed=6)
    last = inputs["padding_mask"].sum(axis=1) - 1
    logits = numpy(model(inputs))
    expected = logits[np.arange(3), last][:, labels]
    np.testing.assert_allclose(numpy(scorer(inputs)), expected, atol=1e-5)


@pytest.mark.training
def test_classifier_fine_tunes_from_the_last_real_token():
    # Label: does token 5 occur? Only the last real position has seen every token.
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(7)
    inputs = right_padded(batch=256, length=10, seed=7, vocabulary_size=20)
    inputs["token_ids"][inputs["token_ids"] == 5] = 6
    labels = rng.integers(0, 2, size=256)
    for row in np.flatnonzero(labels):
        length = inputs["padding_mask"][row].sum()
        inputs["token_ids"][row, rng.integers(0, length)] = 5
    classifier = GPTClassifier(GPTBackbone(**{**CONFIG, "vocabulary_size": 20, "dropout": 0.0}), 2)
    classifier.compile(optimizer=keras.optimizers.Adam(3e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"], jit_compile=JIT_COMPILE)
    history = classifier.fit(inputs, labels, batch_size=32, epochs=8, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    # The prediction ignores what sits under the padding.
    probe = {k: v[:8].copy() for k, v in inputs.items()}
    before = numpy(classifier(probe))
    probe["token_ids"][probe["padding_mask"] == 0] = 5
    np.testing.assert_allclose(numpy(classifier(probe)), before, atol=1e-5)


def test_next_token_targets_shift_by_one_and_weight_out_padding():
    ids = np.array([[11, 12, 13, 0]], "int32")
    mask = np.array([[1, 1, 1, 0]], "int32")
    x, y, weights = next_token_batches(ids, mask)
    np.testing.assert_array_equal(x["token_ids"], [[11, 12, 13]])
    np.testing.assert_array_equal(y, [[12, 13, 0]])
    np.testing.assert_array_equal(weights, [[1, 1, 0]])


def test_flops_per_token_is_six_n_plus_attention_term():
    backbone = GPTBackbone(**CONFIG)
    n = backbone.count_params() - 24 * 32  # position table excluded
    assert flops_per_token(backbone, 16) == 6 * n + 12 * 2 * 32 * 16


@pytest.mark.training
def test_pretraining_on_real_text_beats_a_unigram_model(capsys):
    """Byte-level ids of the offline corpus (no tokenizer needed, so this runs on every backend)."""
    from reference_impl.corpus import offline_corpus, train_validation_split

    def rows(documents, length=33):
        data = np.frombuffer("\n".join(documents).encode("utf-8"), dtype="uint8").astype("int32")
        data = data[: len(data) // length * length].reshape(-1, length)
        return data, np.ones_like(data)

    train_docs, validation_docs = train_validation_split(offline_corpus(), 0.1, seed=0)
    train_ids, train_mask = rows(train_docs)
    train_ids, train_mask = train_ids[:2048], train_mask[:2048]
    validation_ids, validation_mask = rows(validation_docs)
    validation_ids, validation_mask = validation_ids[:128], validation_mask[:128]

    keras.utils.set_random_seed(0)
    config = {**GPTBackbone.sizes["tiny"], "vocabulary_size": 256, "dropout": 0.0}
    model = GPTCausalLM(GPTBackbone(**config))
    compile_causal_lm(model, learning_rate=5e-3, weight_decay=0.0, jit_compile=JIT_COMPILE)
    before = perplexity(model, validation_ids, validation_mask)
    history = pretrain_causal_lm(model, train_ids, train_mask, epochs=2, batch_size=16)
    after = perplexity(model, validation_ids, validation_mask)
    unigram = unigram_perplexity(train_ids, train_mask, validation_ids, validation_mask, 256)

    assert after < 0.1 * before and after < 0.8 * unigram, (before, after, unigram)
    assert "tokens/s" in capsys.readouterr().out
    assert all(entry["tokens_per_second"] > 0 for entry in history.throughput)
