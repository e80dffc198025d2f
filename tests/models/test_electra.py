"""ELECTRA: keras-hub parity, the generator/discriminator pretrainer, export, .keras round trip."""

import keras
import keras_hub
import numpy as np
import pytest

from reference_impl.electra import ElectraBackbone, ElectraPretrainer
from tests.models.helpers import random_encoder_inputs
from tests.models.parity import assert_match_on_both_attention_paths, copy_keras_hub_electra

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32, embedding_dim=16,
              intermediate_dim=64, max_sequence_length=24, dropout=0.1)
MASK_ID = 3


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("embedding_dim", [16, 32])  # with and without the projection
def test_matches_keras_hub_electra_backbone_after_copying_weights(embedding_dim):
    keras.utils.set_random_seed(0)
    config = {**CONFIG, "embedding_dim": embedding_dim}
    config_for_keras_hub = {k: v for k, v in config.items() if k != "vocabulary_size"}
    theirs = keras_hub.models.ElectraBackbone(vocab_size=config["vocabulary_size"],
                                              **config_for_keras_hub)
    ours = ElectraBackbone(**config)
    assert ours.count_params() == theirs.count_params()
    copy_keras_hub_electra(ours, theirs)
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=3, length=16, seed=1)
    assert inputs["padding_mask"].min() == 0
    assert_match_on_both_attention_paths(ours, inputs, theirs(inputs))


def pretraining_batch(seed=0, batch=4, length=12):
    """Masked inputs in `MaskedLMDataset`'s format: (x, y, sample_weight)."""
    rng = np.random.default_rng(seed)
    x = random_encoder_inputs(CONFIG["vocabulary_size"], batch=batch, length=length, seed=seed)
    x["token_ids"] = np.where(x["padding_mask"] == 1, rng.integers(4, 97, (batch, length)), 0)
    x["token_ids"][:, 0] = 1
    positions = np.zeros((batch, 3), "int32")
    weights = np.zeros((batch, 3), "float32")
    for row in range(batch):
        real = int(x["padding_mask"][row].sum())
        count = min(3, real - 1)
        positions[row, :count] = np.sort(rng.choice(np.arange(1, real), count, replace=False))
        weights[row, :count] = 1
    original = np.take_along_axis(x["token_ids"], positions, axis=1) * weights.astype("int32")
    masked = x["token_ids"].copy()
    np.put_along_axis(masked, positions, MASK_ID, axis=1)
    masked[:, 0] = 1  # padding slots point at position 0, which stays [CLS]
    x["token_ids"] = masked.astype("int32")
    x["mask_positions"] = positions
    return x, {"mlm_logits": original.astype("int32")}, {"mlm_logits": weights}


def tiny_pretrainer(seed=0):
    keras.utils.set_random_seed(0)
    return ElectraPretrainer(ElectraBackbone(**CONFIG), generator_size=0.25, seed=seed)


@pytest.fixture(scope="module")
def pretrainer():
    """One model for the tests that only read it (building is slow under JAX)."""
    return tiny_pretrainer()


def test_generator_is_smaller_and_shares_the_discriminator_embeddings(pretrainer):
    model = pretrainer
    assert model.generator_layers[0].hidden_dim == 8  # 32 * 1/4
    assert model.generator_layers[0].num_heads == 1
    shared = model.discriminator.embeddings.token_embedding.embeddings
    assert model.generator_head.token_embedding.embeddings is shared
    embedding_ids = {id(w) for w in model.discriminator.embeddings.weights}
    generator_weight_ids = {id(w) for layer in model.layers if layer.name != "discriminator"
                            for w in layer.weights}
    assert embedding_ids <= generator_weight_ids  # the generator's graph uses them
    # Shared weights are counted once (the MLM head also holds the token table).
    generator = [layer for layer in model.layers if layer.name.startswith("generator")]
    head = [model.discriminator_dense, model.discriminator_prediction]
    distinct = {id(w): w for layer in [model.discriminator, *generator, *head]
                for w in layer.weights}
    assert model.count_params() == sum(int(np.prod(w.shape)) for w in distinct.values())
    assert model.count_params() < sum(layer.count_params()
                                      for layer in [model.discriminator, *generator, *head])


def test_one_step_samples_at_masked_positions_and_weights_rtd_by_fifty(pretrainer):
    # Replacements: sampled only at real masked positions, afresh each step.
    model = pretrainer
    x, y, sample_weight = pretraining_batch()
    y_pred = model(x)
    first = model.pretraining_losses(x, y, y_pred, sample_weight)
    second = model.pretraining_losses(x, y, y_pred, sample_weight)
    corrupted = numpy(first["corrupted_ids"])
    original = x["token_ids"].copy()
    np.put_along_axis(original, x["mask_positions"],
                      np.where(sample_weight["mlm_logits"] > 0, y["mlm_logits"],
                               np.take_along_axis(original, x["mask_positions"], 1)), axis=1)
    masked = np.zeros_like(original, dtype=bool)
    for row, (positions, weights) in enumerate(zip(x["mask_positions"],
                                                   sample_weight["mlm_logits"])):
        masked[row, positions[weights > 0]] = True
    np.testing.assert_array_equal(corrupted[~masked], original[~masked])
    assert (corrupted[masked] != MASK_ID).mean() > 0.9  # samples, not [MASK] left in place
    np.testing.assert_array_equal(numpy(first["is_replaced"]), (corrupted != original))
    # The seed generator advances: the next step draws other replacements.
    assert (numpy(second["corrupted_ids"])[masked] != corrupted[masked]).any()

    # Losses: generator MLM over real predictions + 50 * RTD over non-padding tokens.
    losses = first
    logits = numpy(y_pred["mlm_logits"]).astype("float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    weights = sample_weight["mlm_logits"]
    picked = np.take_along_axis(log_probs, y["mlm_logits"][..., None], -1)[..., 0]
    expected_generator = -(picked * weights).sum() / weights.sum()
    np.testing.assert_allclose(numpy(losses["generator_loss"]), expected_generator, rtol=1e-5)

    rtd_logits = numpy(model.replaced_token_logits(
        {**x, "token_ids": losses["corrupted_ids"]})).astype("float64")
    labels = numpy(losses["is_replaced"])
    per_token = np.maximum(rtd_logits, 0) - rtd_logits * labels + np.log1p(np.exp(-np.abs(rtd_logits)))
    mask = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(numpy(losses["discriminator_loss"]), per_token[mask].mean(), rtol=1e-5)

    total = model.compute_loss(x, y, y_pred, sample_weight)
    np.testing.assert_allclose(
        numpy(total),
        numpy(model.generator_loss_tracker.result()) + 50 * numpy(model.discriminator_loss_tracker.result()),
        rtol=1e-5)


@pytest.mark.training
def test_fit_trains_generator_and_discriminator():
    model = tiny_pretrainer()
    # Graph mode (a compiled train step) without XLA, whose compile is slow on a CPU.
    model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    x, y, sample_weight = pretraining_batch(batch=8)
    before = [numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, sample_weight=sample_weight, batch_size=4, epochs=1, verbose=0)
    for name in ("loss", "generator_loss", "discriminator_loss"):
        assert np.isfinite(history.history[name]).all(), name
    changed = [np.abs(numpy(w) - b).max() > 0 for w, b in zip(model.trainable_weights, before)]
    assert all(changed)  # every weight, the RTD head and both models, got a gradient
    assert not model.discriminator.pooled_dense.trainable  # not part of ELECTRA's objectives


def test_exported_discriminator_is_a_standalone_backbone(pretrainer):
    model = pretrainer
    exported = model.export_discriminator()
    assert type(exported) is ElectraBackbone
    x, _, _ = pretraining_batch()
    inputs = {k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    np.testing.assert_allclose(numpy(exported(inputs)["sequence_output"]),
                               numpy(model.discriminator(inputs)["sequence_output"]), atol=1e-6)
    exported.embeddings.token_embedding.embeddings.assign(
        np.zeros(exported.embeddings.token_embedding.embeddings.shape))
    assert np.abs(numpy(model.discriminator.embeddings.token_embedding.embeddings)).max() > 0


def test_pretrainer_keras_file_round_trip_keeps_sharing(pretrainer, tmp_path):
    model = pretrainer
    x, _, _ = pretraining_batch()
    expected = numpy(model(x)["mlm_logits"])
    expected_rtd = numpy(model.replaced_token_logits(x))
    path = tmp_path / "electra.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(numpy(restored(x)["mlm_logits"]), expected, atol=1e-6)
    np.testing.assert_allclose(numpy(restored.replaced_token_logits(x)), expected_rtd, atol=1e-6)
    assert (restored.generator_head.token_embedding.embeddings
            is restored.discriminator.embeddings.token_embedding.embeddings)
