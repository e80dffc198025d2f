"""Graded inputs of the attention assignment (drawn fresh from a seed at grading time).

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed: batches above one, query length, key length, head
count and head width all different, padding in every row.
"""

import numpy as np

BATCH = 3
HEAD_COUNTS = (2, 4)
HEAD_WIDTHS = (5, 7)
LENGTHS = (6, 8, 9, 10)  # never BATCH, a head count or a head width


def _qkv(rng, batch, heads, q_len, k_len, dim):
    normal = lambda *shape: rng.standard_normal(shape).astype("float32")
    return normal(batch, heads, q_len, dim), normal(batch, heads, k_len, dim), normal(batch, heads, k_len, dim)


def _two_lengths(rng):
    q_len, k_len = rng.choice(LENGTHS, size=2, replace=False)
    return int(q_len), int(k_len)


def _padding_mask(rng, batch, k_len):
    """[B, 1, 1, T_k]: every row padded, no two rows of the same length, one row with a single key."""
    lengths = rng.choice(np.arange(2, k_len), size=batch, replace=False)
    lengths[rng.integers(batch)] = 1
    return (np.arange(k_len)[None, :] < lengths[:, None])[:, None, None, :]


def attention_no_mask(rng):
    """Unmasked attention, two draws: query length, key length, head width, batch and heads all
    differ, so a softmax over the wrong axis or a transposed product cannot slip through."""
    calls = []
    for dim in rng.permutation(HEAD_WIDTHS):
        query, key, value = _qkv(rng, BATCH, HEAD_COUNTS[0], *_two_lengths(rng), int(dim))
        calls.append(dict(query=query, key=key, value=value))
    return calls


def attention_padding_mask(rng):
    """A padding mask [B, 1, 1, T_k] with padding in every row, rows of different lengths and a
    row with one real key; queries and keys of different lengths."""
    q_len, k_len = _two_lengths(rng)
    query, key, value = _qkv(rng, BATCH, HEAD_COUNTS[0], q_len, k_len, int(rng.choice(HEAD_WIDTHS)))
    return [dict(query=query, key=key, value=value, mask=_padding_mask(rng, BATCH, k_len))]


def causal_mask_sizes(rng):
    """Square masks, a single decoding step (offset T_k - 1), a cached chunk (offset T_k - T_q),
    and an offset other than T_k - T_q (a chunk in the middle of a longer cache)."""
    size = int(rng.integers(6, 17))
    chunk = int(rng.integers(2, size - 2))
    return [
        dict(query_length=size, key_length=size),
        dict(query_length=1, key_length=size, offset=size - 1),
        dict(query_length=chunk, key_length=size, offset=size - chunk),
        dict(query_length=chunk, key_length=size, offset=int(rng.integers(1, size - chunk))),
    ]


def attention_causal(rng):
    """Self-attention under a [T, T] causal mask, T never the head width or count."""
    length = int(rng.choice(LENGTHS))
    query, key, value = _qkv(rng, BATCH, HEAD_COUNTS[0], length, length, HEAD_WIDTHS[0])
    causal = np.tril(np.ones((length, length), dtype=bool))
    return [dict(query=query, key=key, value=value, mask=causal)]


def heads_split(rng):
    """[B, T, h * d] -> [B, h, T, d], two draws; T, h and d all differ, so every
    reshape or transpose in the wrong order changes the values."""
    calls = []
    for heads in HEAD_COUNTS:
        dim, length = int(rng.choice(HEAD_WIDTHS)), int(rng.choice(LENGTHS))
        x = rng.standard_normal((BATCH, length, heads * dim)).astype("float32")
        calls.append(dict(x=x, num_heads=heads))
    return calls


def heads_merge(rng):
    """[B, h, T, d] -> [B, T, h * d], two draws; B, h, T and d all differ."""
    return [dict(x=rng.standard_normal((BATCH, heads, int(rng.choice(LENGTHS)), int(rng.choice(HEAD_WIDTHS))))
                 .astype("float32")) for heads in HEAD_COUNTS]


def _layer_weights(rng, hidden):
    """Four Dense layers' kernels and biases (query, key, value, output), biases non-zero."""
    weights = []
    for _ in range(4):
        weights += [(rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype("float32"),
                    (0.1 * rng.standard_normal(hidden)).astype("float32")]
    return weights


def attention_layer(rng):
    """The whole layer with the grader's weights, outputs and gradients, two calls: a padding
    mask [B, 1, 1, T] (padding in every row) and a causal mask [1, 1, T, T]; B, T, h and d all
    differ, and every bias is non-zero, so a projection left out or swapped shows."""
    calls = []
    for heads, masking in zip(HEAD_COUNTS, ("padding", "causal")):
        dim, length = int(rng.choice(HEAD_WIDTHS)), int(rng.choice(LENGTHS))
        hidden = heads * dim
        mask = (_padding_mask(rng, BATCH, length) if masking == "padding"
                else np.tril(np.ones((length, length), dtype=bool))[None, None])
        calls.append(dict(config=dict(num_heads=heads, hidden_dim=hidden), weights=_layer_weights(rng, hidden),
                          inputs=dict(x=rng.standard_normal((BATCH, length, hidden)).astype("float32"),
                                      attention_mask=mask),
                          output_gradient=rng.standard_normal((BATCH, length, hidden)).astype("float32")))
    return calls


CASES = {
    "attention.no_mask": attention_no_mask,
    "attention.padding_mask": attention_padding_mask,
    "attention.causal_mask": causal_mask_sizes,
    "attention.causal": attention_causal,
    "attention.split_heads": heads_split,
    "attention.merge_heads": heads_merge,
    "attention.layer": attention_layer,
}
