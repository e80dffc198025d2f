"""BERT: parity with keras-hub, config round trip, shapes, padding invariance."""

import keras
import keras_hub
import numpy as np
import pytest

from reference_impl.bert import BertBackbone, BertPretrainer
from tests.models.helpers import random_encoder_inputs
from tests.models.parity import copy_keras_hub_bert

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32,
              intermediate_dim=64, max_sequence_length=24, dropout=0.1)


def test_matches_keras_hub_bert_backbone_after_copying_weights():
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.BertBackbone(**CONFIG)
    ours = BertBackbone(**CONFIG)
    copy_keras_hub_bert(ours, theirs)
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=3, length=16, seed=1)
    expected = theirs(inputs)
    for fused in (True, False):
        for block in ours.transformer_layers:
            block.self_attention.use_fused_attention = fused
        got = ours(inputs)
        for key in ("sequence_output", "pooled_output"):
            error = np.max(np.abs(keras.ops.convert_to_numpy(got[key])
                                  - keras.ops.convert_to_numpy(expected[key])))
            assert error < 1e-5, (key, fused, error)


@pytest.mark.parametrize("name,expected", [("tiny", 4_385_920), ("base", 109_482_240)])
def test_parameter_counts_equal_keras_hub(name, expected):
    config = {**BertBackbone.sizes[name], "vocabulary_size": 30522}
    ours = BertBackbone(**config)
    theirs = keras_hub.models.BertBackbone(**config)
    assert ours.count_params() == theirs.count_params() == expected


def test_padding_does_not_change_real_token_outputs():
    keras.utils.set_random_seed(0)
    model = BertBackbone(**{**CONFIG, "dropout": 0.0})
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=2, length=12, seed=2)
    inputs["padding_mask"][:] = 1
    inputs["padding_mask"][:, 8:] = 0
    before = keras.ops.convert_to_numpy(model(inputs)["sequence_output"])[:, :8]
    inputs["token_ids"][:, 8:] = 5  # change only padded positions
    after = keras.ops.convert_to_numpy(model(inputs)["sequence_output"])[:, :8]
    np.testing.assert_allclose(before, after, atol=1e-6)


def test_config_and_keras_file_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = BertPretrainer(BertBackbone(**CONFIG))
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=2, length=10, seed=3)
    inputs["mask_positions"] = np.array([[1, 3], [2, 0]], dtype="int32")
    expected = model(inputs)
    path = tmp_path / "bert.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    got = restored(inputs)
    assert got["mlm_logits"].shape == (2, 2, CONFIG["vocabulary_size"])
    for key in ("mlm_logits", "nsp_logits"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got[key]),
                                   keras.ops.convert_to_numpy(expected[key]), atol=1e-6)
