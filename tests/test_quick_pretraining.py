"""Small models of each family learn from the offline corpus: held-out loss falls clearly."""

import pytest

from reference_impl.corpus import offline_corpus
from reference_impl.quick_pretraining import FAMILIES, pretrain


@pytest.fixture(scope="module")
def corpus():
    return offline_corpus()


@pytest.mark.parametrize("family", FAMILIES)
def test_heldout_pretraining_loss_falls_clearly(family, corpus, tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "tokenizers"
    run = pretrain(family, corpus, steps=80, vocabulary_size=1000, sequence_length=48,
                   cache_dir=cache)
    assert run["steps"] >= 80
    # "Clearly": at least 10% below the untrained model's held-out loss.
    assert run["final_loss"] < 0.9 * run["initial_loss"], run
