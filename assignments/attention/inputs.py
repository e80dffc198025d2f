"""Graded inputs of the attention assignment (drawn fresh from a seed at grading time)."""

import numpy as np


def _qkv(rng, batch, heads, q_len, k_len, dim):
    normal = lambda *shape: rng.standard_normal(shape).astype("float32")
    return normal(batch, heads, q_len, dim), normal(batch, heads, k_len, dim), normal(batch, heads, k_len, dim)


def _padding_mask(rng, batch, k_len):
    """[B, 1, 1, T_k]; every row keeps at least one real key (no fully masked rows)."""
    lengths = rng.integers(1, k_len + 1, size=batch)
    lengths[0] = k_len - 1  # at least one row really is padded
    return (np.arange(k_len)[None, :] < lengths[:, None])[:, None, None, :]


def attention_no_mask(rng):
    q_len, k_len, dim = rng.integers(3, 7), rng.integers(3, 8), int(rng.choice([4, 8]))
    query, key, value = _qkv(rng, 2, 2, q_len, k_len, dim)
    return [dict(query=query, key=key, value=value)]


def attention_padding_mask(rng):
    k_len, dim = int(rng.integers(4, 8)), int(rng.choice([4, 8]))
    query, key, value = _qkv(rng, 3, 2, k_len, k_len, dim)
    return [dict(query=query, key=key, value=value, mask=_padding_mask(rng, 3, k_len))]


def causal_mask_sizes(rng):
    size = int(rng.integers(4, 17))
    return [
        dict(query_length=size, key_length=size),
        dict(query_length=1, key_length=size, offset=size - 1),
        dict(query_length=size - 2, key_length=size, offset=2),
    ]


def attention_causal(rng):
    length, dim = int(rng.integers(4, 8)), 4
    query, key, value = _qkv(rng, 2, 2, length, length, dim)
    causal = np.tril(np.ones((length, length), dtype=bool))
    return [dict(query=query, key=key, value=value, mask=causal)]


def heads_split(rng):
    # head width never equals the head count, so (h, d) and (d, h) splits differ
    heads, dim = int(rng.choice([2, 4])), int(rng.choice([3, 5]))
    x = rng.standard_normal((2, int(rng.integers(3, 6)), heads * dim)).astype("float32")
    return [dict(x=x, num_heads=heads)]


def heads_merge(rng):
    x = rng.standard_normal((2, int(rng.choice([2, 4])), int(rng.integers(3, 6)), 3)).astype("float32")
    return [dict(x=x)]


CASES = {
    "attention.no_mask": attention_no_mask,
    "attention.padding_mask": attention_padding_mask,
    "attention.causal_mask": causal_mask_sizes,
    "attention.causal": attention_causal,
    "attention.split_heads": heads_split,
    "attention.merge_heads": heads_merge,
}
