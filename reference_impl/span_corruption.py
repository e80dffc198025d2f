"""T5's span corruption: drop random spans of the input; the target is the dropped spans.

    original: Thank you for inviting me to your party last week .
    input:    Thank you <X> me to your party <Y> week .
    target:   <X> for inviting <Y> last

Each dropped span becomes one sentinel token in the input (<X>, <Y>, ...:
T5's <extra_id_0>, <extra_id_1>, ..., the last ids of its vocabulary), and
the target lists each sentinel followed by the tokens it replaced. Inputs
shrink by about the noise density and targets are short, so an
encoder-decoder pretrains on them faster than on a full reconstruction.

`random_spans_noise_mask` is T5's (Raffel et al., 2020; t5.data.preprocessors):
of `length` tokens, round(length * noise_density) are noise, split into
round(noise / mean_noise_span_length) spans; the noise and non-noise tokens
are each cut into that many non-empty segments at random, and the segments
alternate, non-noise first. So the noise density and the mean span length are
what was asked for (to rounding), and the span lengths vary.

A data-pipeline step in NumPy (like `masking.py`), the same beside any Keras backend.
"""

import numpy as np


def random_segmentation(num_items, num_segments, rng):
    """Lengths of `num_segments` non-empty segments that sum to `num_items`, at random."""
    first_in_segment = np.zeros(num_items - 1, bool)
    first_in_segment[: num_segments - 1] = True
    rng.shuffle(first_in_segment)
    segment_ids = np.concatenate([[0], np.cumsum(first_in_segment)])
    return np.bincount(segment_ids, minlength=num_segments)


def random_spans_noise_mask(length, noise_density=0.15, mean_noise_span_length=3.0, rng=None):
    """Bool [length]: True for the tokens to drop, in spans of mean length `mean_noise_span_length`."""
    rng = rng if rng is not None else np.random.default_rng()
    if length < 2:
        raise ValueError(f"Span corruption needs at least 2 tokens, got {length}.")
    num_noise_tokens = int(np.clip(round(length * noise_density), 1, length - 1))
    num_noise_spans = max(1, int(round(num_noise_tokens / mean_noise_span_length)))
    num_noise_spans = min(num_noise_spans, num_noise_tokens, length - num_noise_tokens)
    noise_lengths = random_segmentation(num_noise_tokens, num_noise_spans, rng)
    keep_lengths = random_segmentation(length - num_noise_tokens, num_noise_spans, rng)
    # Alternate kept and noise spans, kept first: keep, noise, keep, noise, ...
    span_lengths = np.stack([keep_lengths, noise_lengths], axis=1).reshape(-1)
    span_index = np.repeat(np.arange(len(span_lengths)), span_lengths)
    return span_index % 2 == 1


def sentinel_ids(vocabulary_size, count):
    """T5's sentinels: <extra_id_0> is the last id of the vocabulary, then downwards."""
    return vocabulary_size - 1 - np.arange(count)


def corrupt_spans(token_ids, noise_mask, sentinels):
    """(input ids, target ids) of one sequence for a given noise mask.

    Each noise span becomes the next sentinel in the input; the target is
    each sentinel followed by the tokens of its span.
    """
    token_ids, noise_mask = np.asarray(token_ids), np.asarray(noise_mask, bool)
    span_starts = noise_mask & ~np.concatenate([[False], noise_mask[:-1]])
    if span_starts.sum() > len(sentinels):
        raise ValueError(f"{span_starts.sum()} noise spans but only {len(sentinels)} sentinel ids; "
                         f"pass more sentinels.")
    if np.isin(token_ids, sentinels).any():
        raise ValueError("The tokens already contain sentinel ids; sentinels must be ids the text "
                         "never uses (T5: the last ids of the vocabulary).")
    num_spans = int(span_starts.sum())
    span_sentinels = np.asarray(sentinels)[:num_spans]
    # Input: kept tokens, and one sentinel where each span starts.
    marked = token_ids.copy()
    marked[span_starts] = span_sentinels
    inputs = marked[~noise_mask | span_starts]
    # Target: the noise tokens, each span preceded by its sentinel.
    targets = np.insert(token_ids[noise_mask], np.flatnonzero(span_starts[noise_mask]), span_sentinels)
    return inputs.astype(token_ids.dtype), targets.astype(token_ids.dtype)


def span_corruption(token_ids, sentinels, noise_density=0.15, mean_noise_span_length=3.0, rng=None):
    """(input ids, target ids, noise mask) of one sequence, with a fresh random noise mask."""
    noise_mask = random_spans_noise_mask(len(token_ids), noise_density, mean_noise_span_length, rng)
    return (*corrupt_spans(token_ids, noise_mask, sentinels), noise_mask)


def merge_spans(inputs, targets, sentinels):
    """The original sequence from an input and its target: each sentinel replaced by its span."""
    sentinels = list(np.asarray(sentinels).tolist())
    spans, current = {}, None
    for token in np.asarray(targets).tolist():
        if token in sentinels:
            current = spans.setdefault(token, [])
        elif current is None:
            raise ValueError("The target must start with a sentinel.")
        else:
            current.append(token)
    merged = []
    for token in np.asarray(inputs).tolist():
        if token in sentinels:
            if token not in spans:
                raise ValueError(f"Sentinel {token} is in the input but not in the target.")
            merged.extend(spans[token])
        else:
            merged.append(token)
    return np.array(merged, dtype=np.asarray(inputs).dtype)
