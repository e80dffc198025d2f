"""T5's span corruption: noise statistics on 100k tokens, exact reconstruction, errors."""

import numpy as np
import pytest

from reference_impl.span_corruption import (
    corrupt_spans,
    merge_spans,
    random_spans_noise_mask,
    sentinel_ids,
    span_corruption,
)

VOCABULARY_SIZE = 32128
SENTINELS = sentinel_ids(VOCABULARY_SIZE, 100)


def spans_of(mask):
    """Lengths of the runs of True in a bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


@pytest.mark.parametrize("noise_density,mean_span", [(0.15, 3.0), (0.3, 5.0)])
def test_noise_density_and_mean_span_length_on_100k_tokens(noise_density, mean_span):
    rng = np.random.default_rng(0)
    lengths = rng.integers(64, 512, size=400)
    lengths = lengths[np.cumsum(lengths) <= 100_000]
    masks = [random_spans_noise_mask(int(n), noise_density, mean_span, rng) for n in lengths]
    tokens = sum(len(m) for m in masks)
    assert tokens > 95_000
    spans = np.concatenate([spans_of(m) for m in masks])
    density = sum(m.sum() for m in masks) / tokens
    assert abs(density - noise_density) < 0.005, density  # within 0.5 points
    assert abs(spans.mean() - mean_span) < 0.05 * mean_span, spans.mean()
    # Span lengths vary: not every span has the mean length.
    assert spans.min() == 1 and spans.max() > 2 * mean_span
    # T5's alternation starts with kept tokens and ends with noise (its later random_roll
    # option shifts this away); in between, positions are noised about equally often.
    assert not any(m[0] for m in masks) and all(m[-1] for m in masks)
    by_decile = [np.mean(np.concatenate([np.array_split(m, 10)[d] for m in masks])) for d in range(10)]
    assert max(abs(d - noise_density) for d in by_decile[1:-1]) < 0.03, by_decile


def test_merging_input_and_target_reconstructs_the_original_exactly():
    rng = np.random.default_rng(1)
    for _ in range(200):
        length = int(rng.integers(2, 300))
        tokens = rng.integers(1, VOCABULARY_SIZE - 100, size=length).astype("int32")
        inputs, targets, noise = span_corruption(tokens, SENTINELS, rng=rng)
        np.testing.assert_array_equal(merge_spans(inputs, targets, SENTINELS), tokens)
        assert inputs.dtype == tokens.dtype and targets[0] == SENTINELS[0]
        num_spans = len(spans_of(noise))
        # Each span becomes one sentinel in the input; the target adds one per span.
        assert len(inputs) == length - noise.sum() + num_spans
        assert len(targets) == noise.sum() + num_spans


def test_the_papers_example():
    words = "Thank you for inviting me to your party last week .".split()
    vocabulary = {word: i + 1 for i, word in enumerate(words)}
    tokens = np.array([vocabulary[w] for w in words])
    noise = np.isin(np.arange(len(words)), [2, 3, 8])  # "for inviting", "last"
    inputs, targets = corrupt_spans(tokens, noise, [99, 98])
    names = {v: k for k, v in vocabulary.items()} | {99: "<X>", 98: "<Y>"}
    assert " ".join(names[i] for i in inputs) == "Thank you <X> me to your party <Y> week ."
    assert " ".join(names[i] for i in targets) == "<X> for inviting <Y> last"


def test_sentinels_are_the_last_ids_of_the_vocabulary():
    np.testing.assert_array_equal(sentinel_ids(32128, 3), [32127, 32126, 32125])


def test_bad_inputs_say_what_to_do():
    tokens = np.arange(1, 50)
    with pytest.raises(ValueError, match="already contain sentinel ids"):
        corrupt_spans(np.array([1, 2, 99, 4]), np.array([0, 1, 0, 0], bool), [99])
    with pytest.raises(ValueError, match="only 1 sentinel ids; pass more"):
        corrupt_spans(tokens, np.isin(tokens, [3, 10]), [99])
    with pytest.raises(ValueError, match="at least 2 tokens"):
        random_spans_noise_mask(1)
    with pytest.raises(ValueError, match="not in the target"):
        merge_spans([1, 99, 2], [98, 5], [99, 98])
