"""The papers' sizes of RoBERTa, ALBERT and ELECTRA have keras-hub's parameter counts.

Building a 124M-parameter model takes seconds, so these run once, under the
default backend; the tiny sizes are checked under every backend in each
model's own tests.
"""

import keras_hub
import pytest

from reference_impl.albert import AlbertBackbone
from reference_impl.electra import ElectraBackbone
from reference_impl.roberta import RobertaBackbone

CASES = [
    (RobertaBackbone, keras_hub.models.RobertaBackbone, "base", 124_052_736),  # vocab 50265
    (AlbertBackbone, keras_hub.models.AlbertBackbone, "base", 11_683_584),  # vocab 30000
    (ElectraBackbone, keras_hub.models.ElectraBackbone, "small", 13_548_800),  # vocab 30522
    (ElectraBackbone, keras_hub.models.ElectraBackbone, "base", 109_482_240),  # vocab 30522
]


@pytest.mark.parametrize("ours,theirs,name,expected", CASES,
                         ids=[f"{c[0].__name__}-{c[2]}" for c in CASES])
def test_paper_sizes_equal_keras_hub(ours, theirs, name, expected):
    config = ours.sizes[name]
    assert ours(**config).count_params() == expected
    if theirs is keras_hub.models.ElectraBackbone:  # keras-hub's ELECTRA alone says vocab_size
        config = {("vocab_size" if k == "vocabulary_size" else k): v for k, v in config.items()}
    assert theirs(**config).count_params() == expected
