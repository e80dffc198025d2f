"""References and known bugs for the attention assignment.

Never imported inside the sandbox. References come from `reference_impl.layers`;
each known bug is the reference computed with the bug put in, so feedback can
name the mistake when a student's outputs match it.
"""

import math

import numpy as np

from grader.assignments import Case, as_numpy_outputs as _numpy
from reference_impl import layers


def sdpa(query, key, value, mask=None):
    return _numpy(layers.scaled_dot_product_attention(query, key, value, mask=mask))


def _softmax(scores, axis):
    scores = scores - scores.max(axis=axis, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=axis, keepdims=True)


def _scores(query, key):
    return np.einsum("bhqd,bhkd->bhqk", query, key) / math.sqrt(query.shape[-1])


def no_scaling(query, key, value, mask=None):
    return sdpa(query * math.sqrt(query.shape[-1]), key, value, mask)


def scaled_by_d(query, key, value, mask=None):
    return sdpa(query / math.sqrt(query.shape[-1]), key, value, mask)


def mask_after_softmax(query, key, value, mask=None):
    weights = _softmax(_scores(query, key), axis=-1)
    if mask is not None:
        weights = np.where(mask, weights, 0.0).astype(weights.dtype)
    return np.einsum("bhqk,bhkd->bhqd", weights, value), weights


def softmax_over_queries(query, key, value, mask=None):
    scores = _scores(query, key)
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    weights = _softmax(scores, axis=-2).astype("float32")
    return np.einsum("bhqk,bhkd->bhqd", weights, value), weights


def mask_ignored(query, key, value, mask=None):
    return sdpa(query, key, value, None)


def mask_inverted(query, key, value, mask=None):
    return sdpa(query, key, value, None if mask is None else ~np.asarray(mask, bool))


def value_not_weighted(query, key, value, mask=None):
    outputs, weights = sdpa(query, key, value, mask)
    return np.einsum("bhqk,bhqd->bhqd", weights, query), weights


ATTENTION_BUGS = {
    "no 1/sqrt(d) scaling of the scores": no_scaling,
    "scores divided by d instead of sqrt(d)": scaled_by_d,
    "mask applied after the softmax (weights no longer sum to one)": mask_after_softmax,
    "softmax taken over the query axis instead of the key axis": softmax_over_queries,
    "mask ignored": mask_ignored,
    "mask inverted (True treated as 'blocked')": mask_inverted,
}


def causal_mask(query_length, key_length, offset=0):
    return _numpy(layers.causal_attention_mask(query_length, key_length, offset))


def _shifted_causal(shift):
    def mask(query_length, key_length, offset=0):
        return causal_mask(query_length, key_length, offset + shift)
    return mask


def causal_offset_ignored(query_length, key_length, offset=0):
    return causal_mask(query_length, key_length, 0)


def causal_transposed(query_length, key_length, offset=0):
    rows = np.arange(query_length)[:, None] + offset
    return (np.arange(key_length)[None, :] >= rows,)


def causal_float(query_length, key_length, offset=0):
    (mask,) = causal_mask(query_length, key_length, offset)
    return (np.where(mask, 0.0, -1e9),)


CAUSAL_BUGS = {
    "causal mask off by one: a query cannot see its own position (j < i)": _shifted_causal(-1),
    "causal mask off by one: a query sees the next position (j <= i + 1)": _shifted_causal(1),
    "offset ignored (breaks cached decoding)": causal_offset_ignored,
    "upper-triangular mask: queries see the future, not the past": causal_transposed,
}


def _mha(num_heads, width):
    return layers.MultiHeadAttention(num_heads=num_heads, hidden_dim=width)


def split_heads(x, num_heads):
    return _numpy(_mha(num_heads, x.shape[-1]).split_heads(x))


def merge_heads(x):
    return _numpy(_mha(x.shape[1], x.shape[1] * x.shape[3]).merge_heads(x))


def split_without_transpose(x, num_heads):
    b, t, width = x.shape
    return (x.reshape(b, num_heads, t, width // num_heads),)


def split_heads_last(x, num_heads):
    b, t, width = x.shape
    return (x.reshape(b, t, width // num_heads, num_heads).transpose(0, 3, 1, 2),)


def merge_without_transpose(x):
    b, h, t, d = x.shape
    return (x.reshape(b, t, h * d),)


def merge_heads_last(x):
    b, h, t, d = x.shape
    return (x.transpose(0, 2, 3, 1).reshape(b, t, h * d),)


CASES = {
    "attention.no_mask": Case("scaled_dot_product_attention", sdpa, ATTENTION_BUGS),
    "attention.padding_mask": Case("scaled_dot_product_attention", sdpa, ATTENTION_BUGS),
    "attention.causal": Case("scaled_dot_product_attention", sdpa, ATTENTION_BUGS),
    "attention.causal_mask": Case("causal_attention_mask", causal_mask, CAUSAL_BUGS | {
        "mask returned as additive float scores instead of booleans": causal_float}),
    "attention.split_heads": Case("split_heads", split_heads, {
        "reshaped straight to [B, h, T, d] without a transpose": split_without_transpose,
        "head index taken from the last axis instead of splitting H as (h, d)": split_heads_last}),
    "attention.merge_heads": Case("merge_heads", merge_heads, {
        "reshaped straight to [B, T, H] without a transpose": merge_without_transpose,
        "heads merged in (d, h) order instead of (h, d)": merge_heads_last}),
}
