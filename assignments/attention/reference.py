"""References of the attention assignment, computed by `reference_impl.layers`.

Trusted: never released, never imported inside the sandbox.
"""

from grader.assignment import numpy_outputs
from reference_impl import layers


def scaled_dot_product_attention(query, key, value, mask=None):
    return numpy_outputs(layers.scaled_dot_product_attention(query, key, value, mask=mask))


def causal_attention_mask(query_length, key_length, offset=0):
    return numpy_outputs(layers.causal_attention_mask(query_length, key_length, offset))


def _mha(num_heads, width):
    return layers.MultiHeadAttention(num_heads=num_heads, hidden_dim=width)


def split_heads(x, num_heads):
    return numpy_outputs(_mha(num_heads, x.shape[-1]).split_heads(x))


def merge_heads(x):
    return numpy_outputs(_mha(x.shape[1], x.shape[1] * x.shape[3]).merge_heads(x))


class MultiHeadAttention(layers.MultiHeadAttention):
    """reference_impl's layer through `scaled_dot_product_attention`; its four Dense layers
    (query, key, value, output) are the notebook's, in the same order."""

    def __init__(self, num_heads, hidden_dim):
        super().__init__(num_heads, hidden_dim, use_fused_attention=False)


REFERENCES = {
    "scaled_dot_product_attention": scaled_dot_product_attention,
    "causal_attention_mask": causal_attention_mask,
    "split_heads": split_heads,
    "merge_heads": merge_heads,
    "MultiHeadAttention": MultiHeadAttention,
}
