"""Graded inputs of the GPT assignment (drawn fresh from a seed at grading time).

Sampling and top-p compare a draw (or p) with cumulative probabilities, so a
draw close to a boundary could flip between two correct implementations
that round differently. The distributions are therefore built from whole
counts out of N (probabilities k / N), and every draw and every p lies
halfway between two multiples of 1 / N: 1 / (2N) from any boundary.

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed.
"""

import numpy as np


def _right_padded(rng, batch, length):
    """A padding mask [B, T] (int32) with a full row, a one-token row and at least one padded row."""
    lengths = rng.integers(2, length, size=batch)
    lengths[0], lengths[1] = length, 1
    rng.shuffle(lengths)
    return (np.arange(length)[None, :] < lengths[:, None]).astype("int32")


def shift_batches(rng):
    """Two padded batches, each with a full row and a one-token row. Token 0 is a real token
    (as in GPT-2, which has no padding token); padding holds the end-of-text id, so only the
    mask tells padding apart."""
    calls = []
    for batch, length in ((4, int(rng.integers(6, 10))), (3, int(rng.integers(3, 6)))):
        vocabulary_size = 50
        padding_mask = _right_padded(rng, batch, length)
        token_ids = rng.integers(0, vocabulary_size - 1, size=(batch, length))
        token_ids = np.where(padding_mask == 1, token_ids, vocabulary_size - 1).astype("int32")
        calls.append(dict(token_ids=token_ids, padding_mask=padding_mask))
    return calls


def _distinct_logits(rng, batch, vocabulary_size):
    """Normal logits with no two equal in a row (ties would make top-k ambiguous), each row
    on its own level (apart by more than a row's spread), so no threshold fits two rows."""
    logits = np.clip(rng.standard_normal((batch, vocabulary_size)) * 2.0, -6, 6)
    levels = 15.0 * rng.permutation(batch)[:, None]
    return (logits + levels + np.arange(vocabulary_size) * 1e-3).astype("float32")


def top_k_logits(rng):
    """A k between 2 and V - 2, and k = 1, on rows of distinct logits, each row on its own level."""
    vocabulary_size = int(rng.integers(8, 13))
    return [
        dict(logits=_distinct_logits(rng, 4, vocabulary_size), k=int(rng.integers(2, vocabulary_size - 1))),
        dict(logits=_distinct_logits(rng, 3, vocabulary_size), k=1),
    ]


def _count_distributions(rng, batch, vocabulary_size):
    """Counts [B, V]: distinct positive integers per row (no tied probabilities)."""
    return np.stack([rng.choice(np.arange(1, 4 * vocabulary_size), vocabulary_size, replace=False)
                     for _ in range(batch)])


def _halfway(rng, totals, low=0):
    """One value per row halfway between two multiples of 1 / total, in (low / total, 1)."""
    return ((rng.integers(low, totals) + 0.5) / totals).astype("float32")


def _logits_of(counts, temperature, rng):
    """Logits whose softmax at `temperature` is counts / total, shifted by a random constant per row."""
    shift = rng.uniform(-3, 3, size=(len(counts), 1))
    return (temperature * np.log(counts / counts.sum(axis=1, keepdims=True)) + shift).astype("float32")


def top_p_logits(rng):
    """Five distributions, one per call: the token that takes the mass past p is kept, and
    one p lies below the top token's probability (only that token is kept)."""
    vocabulary_size, batch = int(rng.integers(7, 11)), 5
    counts = _count_distributions(rng, batch, vocabulary_size)
    totals = counts.sum(axis=1)
    # One p lies below the top token's probability: only that token is kept.
    p = _halfway(rng, totals, low=totals // 4)
    p[0] = (rng.integers(0, counts[0].max()) + 0.5) / totals[0]
    # keep_top_p takes one p for the whole batch: one call per row.
    return [dict(logits=_logits_of(counts[i:i + 1], 1.0, rng), p=float(p[i])) for i in range(batch)]


def sampling_draws(rng):
    """A low and a high temperature, sixteen draws each, none near a cumulative boundary."""
    calls = []
    for temperature in (float(rng.choice([0.4, 0.5])), float(rng.choice([2.0, 2.5]))):
        vocabulary_size, batch = int(rng.integers(6, 11)), 16
        counts = _count_distributions(rng, batch, vocabulary_size)
        calls.append(dict(logits=_logits_of(counts, temperature, rng), temperature=temperature,
                          uniform=_halfway(rng, counts.sum(axis=1))))
    return calls


def last_token_heads(rng):
    """Two padded batches, each with a full row and a one-token row."""
    calls = []
    for batch, length in ((4, int(rng.integers(5, 8))), (3, 4)):
        hidden, classes = 5, 3  # hidden != classes: a transposed kernel cannot slip through
        calls.append(dict(
            sequence_output=rng.standard_normal((batch, length, hidden)).astype("float32"),
            padding_mask=_right_padded(rng, batch, length),
            kernel=rng.standard_normal((hidden, classes)).astype("float32"),
            bias=rng.standard_normal(classes).astype("float32"),
        ))
    return calls


def _block_weights(rng, hidden, intermediate):
    """Attention's four Dense layers, a LayerNorm, the feed-forward network's two Dense layers and
    a LayerNorm: kernels, biases and LayerNorm scales all drawn (none at their initial values)."""
    normal = lambda *shape, scale=1.0: (scale * rng.standard_normal(shape)).astype("float32")
    layer_norm = lambda: [1.0 + normal(hidden, scale=0.2), normal(hidden, scale=0.1)]
    weights = []
    for _ in range(4):
        weights += [normal(hidden, hidden, scale=hidden ** -0.5), normal(hidden, scale=0.1)]
    weights += layer_norm()
    weights += [normal(hidden, intermediate, scale=hidden ** -0.5), normal(intermediate, scale=0.1),
                normal(intermediate, hidden, scale=intermediate ** -0.5), normal(hidden, scale=0.1)]
    return weights + layer_norm()


def gpt_block(rng):
    """The whole pre-LayerNorm block with the grader's weights, three calls: a sequence without a
    cache (training: outputs and gradients), then with a key-value cache (outputs and the updated
    cache): a prompt written from position 0, and a chunk of 3 tokens in the middle of the cache
    (its offset neither 0 nor T_max - 3). Every cache slot holds stale values before the call,
    which the causal mask must hide beyond the new tokens; B, T, h, d, the width and T_max all
    differ."""
    batch, heads, head_dim, intermediate, max_length = 3, 2, int(rng.choice([5, 7])), 24, 11
    hidden = heads * head_dim
    weights = _block_weights(rng, hidden, intermediate)
    config = dict(num_heads=heads, hidden_dim=hidden, intermediate_dim=intermediate)
    x = lambda length: rng.standard_normal((batch, length, hidden)).astype("float32")
    length = int(rng.integers(6, 10))
    calls = [dict(config=config, weights=weights, inputs=dict(x=x(length)),
                  output_gradient=rng.standard_normal((batch, length, hidden)).astype("float32"))]
    for length, index in ((int(rng.integers(6, 9)), 0), (3, int(rng.integers(2, max_length - 4)))):
        cache = rng.standard_normal((batch, 2, heads, max_length, head_dim)).astype("float32")
        calls.append(dict(config=config, weights=weights,
                          inputs=dict(x=x(length), cache=cache, cache_update_index=index), output_gradient=None))
    return calls

CASES = {
    "gpt.next_token_shift": shift_batches,
    "gpt.top_k": top_k_logits,
    "gpt.top_p": top_p_logits,
    "gpt.sampling": sampling_draws,
    "gpt.last_token_logits": last_token_heads,
    "gpt.block": gpt_block,
}
