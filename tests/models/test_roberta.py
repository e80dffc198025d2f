"""RoBERTa: keras-hub parity and parameter count, MLM-only pretrainer, .keras round trip.

The base size's count is checked in test_encoder_parameter_counts.py.
"""

import keras
import keras_hub
import numpy as np
import pytest

from reference_impl.roberta import RobertaBackbone, RobertaPretrainer
from tests.models.helpers import random_encoder_inputs
from tests.models.parity import assert_match_on_both_attention_paths, copy_keras_hub_roberta

pytestmark = pytest.mark.backend

CONFIG = dict(vocabulary_size=97, num_layers=2, num_heads=4, hidden_dim=32,
              intermediate_dim=64, max_sequence_length=24, dropout=0.1)


def roberta_inputs(batch, length, seed):
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=batch, length=length, seed=seed)
    return {"token_ids": inputs["token_ids"], "padding_mask": inputs["padding_mask"]}


def test_matches_keras_hub_roberta_backbone_after_copying_weights():
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.RobertaBackbone(**CONFIG)
    ours = RobertaBackbone(**CONFIG)
    assert ours.count_params() == theirs.count_params()
    copy_keras_hub_roberta(ours, theirs)
    inputs = roberta_inputs(batch=3, length=16, seed=1)
    assert inputs["padding_mask"].min() == 0  # some rows are padded
    expected = theirs(inputs)  # keras-hub returns the sequence output alone
    assert_match_on_both_attention_paths(
        ours, inputs, {"sequence_output": expected, "pooled_output": expected[:, 0, :]})


def test_pretrainer_has_only_the_mlm_objective_and_round_trips_keras_file(tmp_path):
    keras.utils.set_random_seed(0)
    model = RobertaPretrainer(RobertaBackbone(**CONFIG))
    inputs = roberta_inputs(batch=2, length=10, seed=3)
    inputs["mask_positions"] = np.array([[1, 3], [2, 0]], dtype="int32")
    expected = model(inputs)
    assert list(expected) == ["mlm_logits"]
    assert expected["mlm_logits"].shape == (2, 2, CONFIG["vocabulary_size"])
    path = tmp_path / "roberta.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(restored.backbone, RobertaBackbone)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(restored(inputs)["mlm_logits"]),
                               keras.ops.convert_to_numpy(expected["mlm_logits"]), atol=1e-6)
