"""Fine-tuning heads: shapes, gradients reach the backbone, each learns a real signal."""

import keras
import numpy as np
import pytest

from reference_impl.bert import BertBackbone
from reference_impl.heads import SequenceClassifier, SpanExtractor, TokenClassifier
from reference_impl.optimization import adamw
from tests.models.helpers import random_encoder_inputs

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=32,
              intermediate_dim=64, max_sequence_length=16, dropout=0.0)


def fit(model, x, y, loss, epochs=30):
    model.compile(optimizer=adamw(3e-3, weight_decay=0.0), loss=loss)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model


def data(seed, batch=128):
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=batch, length=12, seed=seed)
    inputs["padding_mask"][:] = 1
    return inputs


@pytest.mark.training
def test_sequence_classifier_learns_which_texts_contain_a_token_and_trains_the_backbone():
    keras.utils.set_random_seed(0)
    x = data(0)
    x["token_ids"][:64, 5] = 7
    y = (x["token_ids"] == 7).any(axis=1).astype("int32")
    model = SequenceClassifier(BertBackbone(**CONFIG), num_classes=2, pooling="first")
    before = keras.ops.convert_to_numpy(model.backbone.token_embedding.embeddings).copy()
    fit(model, x, y, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    accuracy = (np.argmax(keras.ops.convert_to_numpy(model(x)), -1) == y).mean()
    assert accuracy > 0.95
    after = keras.ops.convert_to_numpy(model.backbone.token_embedding.embeddings)
    assert np.abs(after - before).max() > 1e-3  # the whole network was fine-tuned


def test_regression_head_has_one_output():
    model = SequenceClassifier(BertBackbone(**CONFIG), num_classes=1)
    assert tuple(model(data(1, batch=3)).shape) == (3, 1)


@pytest.mark.training
def test_token_classifier_learns_a_per_token_rule():
    keras.utils.set_random_seed(0)
    x = data(2)
    y = (x["token_ids"] % 2).astype("int32")
    model = fit(TokenClassifier(BertBackbone(**CONFIG), num_classes=2), x, y,
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    accuracy = (np.argmax(keras.ops.convert_to_numpy(model(x)), -1) == y).mean()
    assert accuracy > 0.95


@pytest.mark.training
def test_span_extractor_finds_a_marked_span_and_never_points_into_padding():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(3)
    x = data(3)
    start = rng.integers(1, 6, size=len(x["token_ids"]))
    x["token_ids"][np.arange(len(start)), start] = 3      # answer starts after id 3
    x["token_ids"][np.arange(len(start)), start + 3] = 4  # and ends before id 4
    y = {"start_logits": start + 1, "end_logits": start + 2}
    model = fit(SpanExtractor(BertBackbone(**CONFIG)), x, y,
                keras.losses.SparseCategoricalCrossentropy(from_logits=True), epochs=40)
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(x).items()}
    assert (out["start_logits"].argmax(-1) == y["start_logits"]).mean() > 0.9
    assert (out["end_logits"].argmax(-1) == y["end_logits"]).mean() > 0.9
    x["padding_mask"][:, 10:] = 0
    out = keras.ops.convert_to_numpy(model(x)["start_logits"])
    assert (out[:, 10:] < -1e8).all()


def test_heads_round_trip_through_keras_files(tmp_path):
    model = TokenClassifier(BertBackbone(**CONFIG), num_classes=3)
    model.save(tmp_path / "tagger.keras")
    restored = keras.saving.load_model(tmp_path / "tagger.keras", safe_mode=True)
    x = data(4, batch=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)
