"""References of the longer-context assignment.

Trusted: never released, never imported inside the sandbox. References come
from `reference_impl.transformer_xl` (the memory update, the relative shift, the
relative attention layer), `reference_impl.layers` (attention under a causal
mask whose offset is the memory length), `reference_impl.span_corruption` and
`reference_impl.distillation` (the soft-target loss).
"""

import types

from keras import ops

from grader.assignment import numpy_outputs
from reference_impl import distillation, layers, span_corruption, transformer_xl


def update_memory(memory, layer_input, memory_length):
    # The backbone's own method; it reads only `memory_length` from the backbone.
    backbone = types.SimpleNamespace(memory_length=memory_length)
    return numpy_outputs(transformer_xl.TransformerXLBackbone.next_memory(backbone, memory, layer_input))


def memory_attention(segment, memory, query_kernel, key_kernel, value_kernel):
    memory_length, segment_length = memory.shape[1], segment.shape[1]
    context = ops.concatenate([memory, segment], axis=1)
    query, key, value = (ops.matmul(x, kernel)[:, None] for x, kernel in
                         ((segment, query_kernel), (context, key_kernel), (context, value_kernel)))
    mask = layers.causal_attention_mask(segment_length, memory_length + segment_length, memory_length)
    outputs, weights = layers.scaled_dot_product_attention(query, key, value, mask=mask)
    return numpy_outputs((outputs[:, 0], weights[:, 0]))


def relative_position_scores(query, key, position, content_bias, position_bias):
    # RelativeAttention.attend's two terms, before the 1/sqrt(d) scaling; it takes [B, T, n, d].
    query, key = ops.transpose(query, (0, 2, 1, 3)), ops.transpose(key, (0, 2, 1, 3))
    content = ops.einsum("bind,bjnd->bnij", query + content_bias, key)
    by_distance = ops.einsum("bind,pnd->bnip", query + position_bias, position)
    return numpy_outputs(content + transformer_xl.relative_shift(by_distance, key.shape[1]))


class RelativeMemoryAttention(transformer_xl.RelativeAttention):
    """reference_impl's relative attention (Transformer-XL's and XLNet's) over [memory; segment], with
    the memory under stop_gradient (the backbone stops it when it makes the memory; the notebook's
    layer stops it itself) and the causal mask offset by the memory length. Its weights are the
    notebook's, in the same order: u, v, then the query, key, value, position (W_r) and output
    kernels."""

    def call(self, segment, memory, position_encoding):
        memory_length, segment_length = memory.shape[1], segment.shape[1]
        mask = layers.causal_attention_mask(segment_length, memory_length + segment_length, memory_length)
        return super().call(segment, position_encoding, mask[None], memory=ops.stop_gradient(memory))


def span_corrupt(token_ids, noise_mask, sentinels):
    return numpy_outputs(span_corruption.corrupt_spans(token_ids, noise_mask, sentinels))


def distillation_loss(student_logits, teacher_logits, temperature, weights):
    return numpy_outputs(distillation.soft_target_loss(student_logits, teacher_logits, temperature, weights))


REFERENCES = {
    "update_memory": update_memory,
    "memory_attention": memory_attention,
    "relative_position_scores": relative_position_scores,
    "RelativeMemoryAttention": RelativeMemoryAttention,
    "span_corruption": span_corrupt,
    "distillation_loss": distillation_loss,
}
