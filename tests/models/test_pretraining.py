"""The pretraining loss is BERT's (masked-LM mean over real predictions, plus NSP), and gradient
accumulation over k micro-batches equals one k-times larger batch when they hold as many predictions."""

import keras
import numpy as np
import pytest

from reference_impl.bert import BertBackbone, BertPretrainer
from reference_impl.optimization import adamw
from reference_impl.pretraining import MaskedLMDataset, compile_for_pretraining
from tests.models.helpers import random_encoder_inputs

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=64, num_layers=1, num_heads=2, hidden_dim=16,
              intermediate_dim=32, max_sequence_length=16, dropout=0.0)


def train_once(batch_size, accumulation):
    keras.utils.set_random_seed(0)
    model = BertPretrainer(BertBackbone(**CONFIG))
    # Full rows of 15 ordinary tokens after [CLS] and a 20% selection: exactly 3 predictions
    # per row, so every micro-batch's masked-LM mean has as many terms as the big batch's share.
    features = random_encoder_inputs(CONFIG["vocabulary_size"], batch=8, length=16, seed=0)
    features["padding_mask"][:] = 1
    features["token_ids"] = np.random.default_rng(0).integers(4, 64, size=(8, 16)).astype("int32")
    features["token_ids"][:, 0] = 1
    labels = {"nsp_logits": np.arange(8) % 2}
    data = MaskedLMDataset(features, dict(special_token_ids={0, 1, 2, 3}, vocabulary_size=64,
                                          mask_token_id=3, selection_rate=0.2),
                           batch_size=batch_size, labels=labels, dynamic=False, shuffle=False)
    # No clipping: Keras clips each micro-batch gradient, which a big batch would not.
    compile_for_pretraining(model, adamw(1e-2, clipnorm=None,
                                         gradient_accumulation_steps=accumulation))
    model.fit(data, epochs=1, verbose=0)
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def test_gradient_accumulation_equals_one_large_batch():
    big = train_once(batch_size=8, accumulation=None)
    accumulated = train_once(batch_size=2, accumulation=4)
    for a, b in zip(big, accumulated):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # And the update really happened (not two untouched models compared).
    keras.utils.set_random_seed(0)
    untouched = BertPretrainer(BertBackbone(**CONFIG)).trainable_weights
    initial_model_changed = any(
        np.abs(keras.ops.convert_to_numpy(u) - a).max() > 1e-4 for u, a in zip(untouched, big))
    assert initial_model_changed


def test_masked_lm_loss_is_the_mean_over_real_predictions():
    keras.utils.set_random_seed(0)
    model = compile_for_pretraining(BertPretrainer(BertBackbone(**CONFIG)))
    features = random_encoder_inputs(CONFIG["vocabulary_size"], batch=4, length=16, seed=1)
    data = MaskedLMDataset(features, dict(special_token_ids={0, 1, 2, 3}, vocabulary_size=64,
                                          mask_token_id=3),
                           batch_size=4, labels={"nsp_logits": np.arange(4) % 2}, dynamic=False,
                           shuffle=False)
    x, y, weights = data[0]
    assert 0 < weights["mlm_logits"].mean() < 1  # some prediction slots are padding
    y_pred = model(x)
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(x, y, y_pred, weights)))

    def cross_entropy(logits, labels):
        logits = keras.ops.convert_to_numpy(logits).astype("float64")
        log_probs = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        return -np.take_along_axis(log_probs, labels[..., None].astype(int), -1)[..., 0]

    mlm = cross_entropy(y_pred["mlm_logits"], y["mlm_logits"])
    expected = (mlm * weights["mlm_logits"]).sum() / weights["mlm_logits"].sum() \
        + cross_entropy(y_pred["nsp_logits"], y["nsp_logits"]).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
