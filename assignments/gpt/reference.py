"""References of the GPT assignment.

Trusted: never released, never imported inside the sandbox. References come
from `reference_impl.gpt` (next-token targets, last-token pooling) and
`reference_impl.generation` (top-k, top-p, temperature and inverse-CDF sampling); the block
from `reference_impl.layers.TransformerBlock`.
"""

import keras

from grader.assignment import numpy_outputs
from reference_impl import generation, gpt, layers


def next_token_shift(token_ids, padding_mask):
    x, targets, weights = gpt.next_token_batches(token_ids, padding_mask)
    return numpy_outputs((x["token_ids"], x["padding_mask"], targets, weights))


def keep_top_k(logits, k):
    return numpy_outputs(generation.keep_top_k(logits, k))


def keep_top_p(logits, p):
    return numpy_outputs(generation.keep_top_p(logits, p))


def sample_next_token(logits, temperature, uniform):
    return numpy_outputs(generation.sample_from_uniform(generation.filter_logits(logits, temperature),
                                                        uniform))


def last_token_logits(sequence_output, padding_mask, kernel, bias):
    pooled = gpt.LastTokenPooling()(sequence_output, padding_mask)
    head = keras.layers.Dense(kernel.shape[1])
    head.build((None, kernel.shape[0]))
    head.set_weights([kernel, bias])
    return numpy_outputs(head(pooled))


class GPTBlock(layers.TransformerBlock):
    """reference_impl's pre-LayerNorm causal block (GPT-2's tanh GELU, LayerNorm epsilon 1e-5) with a
    key-value cache; its weights are the notebook's, in the same order."""

    def __init__(self, num_heads, hidden_dim, intermediate_dim):
        super().__init__(num_heads, hidden_dim, intermediate_dim, activation="gelu_approximate",
                         layer_norm_epsilon=1e-5, normalize_first=True, use_causal_mask=True,
                         use_fused_attention=False)


REFERENCES = {
    "next_token_inputs_and_targets": next_token_shift,
    "keep_top_k": keep_top_k,
    "keep_top_p": keep_top_p,
    "sample_next_token": sample_next_token,
    "last_token_logits": last_token_logits,
    "GPTBlock": GPTBlock,
}
