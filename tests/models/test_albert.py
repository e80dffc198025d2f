"""ALBERT: keras-hub parity with shared groups, parameter counts, SOP pretrainer, .keras round trip.

The base size's count is checked in test_encoder_parameter_counts.py.
"""

import keras
import keras_hub
import numpy as np
import pytest

from reference_impl.albert import AlbertBackbone, AlbertPretrainer
from tests.models.helpers import random_encoder_inputs
from tests.models.parity import assert_match_on_both_attention_paths, copy_keras_hub_albert

pytestmark = pytest.mark.backend

# 4 layer applications over 2 groups of 2 distinct blocks: each group runs twice.
CONFIG = dict(vocabulary_size=97, num_layers=4, num_heads=4, embedding_dim=16, hidden_dim=32,
              intermediate_dim=64, num_groups=2, num_inner_repetitions=2,
              max_sequence_length=24, dropout=0.1)


def test_matches_keras_hub_albert_backbone_with_sharing_groups():
    keras.utils.set_random_seed(0)
    theirs = keras_hub.models.AlbertBackbone(**CONFIG)
    ours = AlbertBackbone(**CONFIG)
    assert ours.count_params() == theirs.count_params()
    copy_keras_hub_albert(ours, theirs)
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=3, length=16, seed=1)
    assert inputs["padding_mask"].min() == 0
    assert_match_on_both_attention_paths(ours, inputs, theirs(inputs))


def test_layers_are_shared_within_groups():
    model = AlbertBackbone(**CONFIG)
    distinct_blocks = [block for group in model.transformer_layers for block in group]
    assert len(distinct_blocks) == CONFIG["num_groups"] * CONFIG["num_inner_repetitions"]
    # Only 4 blocks' weights, although the input passes through 4 * 2 = 8 blocks.
    block_params = distinct_blocks[0].count_params()
    embedding_params = model.embeddings.count_params() + model.embeddings_projection.count_params()
    assert model.count_params() == (embedding_params + 4 * block_params
                                    + model.pooled_dense.count_params())


def test_num_layers_must_divide_into_groups():
    with pytest.raises(ValueError, match="divisible by num_groups"):
        AlbertBackbone(**{**CONFIG, "num_layers": 3})


def test_pretrainer_outputs_and_keras_file_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = AlbertPretrainer(AlbertBackbone(**CONFIG))
    inputs = random_encoder_inputs(CONFIG["vocabulary_size"], batch=2, length=10, seed=3)
    inputs["mask_positions"] = np.array([[1, 3], [2, 0]], dtype="int32")
    expected = model(inputs)
    assert expected["mlm_logits"].shape == (2, 2, CONFIG["vocabulary_size"])
    assert expected["sop_logits"].shape == (2, 2)
    path = tmp_path / "albert.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    got = restored(inputs)
    for key in ("mlm_logits", "sop_logits"):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got[key]),
                                   keras.ops.convert_to_numpy(expected[key]), atol=1e-6)
