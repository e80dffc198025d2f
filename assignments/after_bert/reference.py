"""References of the after-BERT assignment (RoBERTa, ALBERT, ELECTRA).

Trusted: never released, never imported inside the sandbox. References come
from `reference_impl`: parameter counts and the factorised embedding from a
real `AlbertBackbone` (its layers given the drawn weights), the replaced-token
labels and the RTD loss from `reference_impl.electra`. Gradient accumulation
is the weighted mean that makes k micro-batches of a token-averaged loss (the
kit's MLM and RTD losses, sums over real tokens divided by their count) give
the large-batch gradient.
"""

import functools

import numpy as np
import keras
from keras import ops

from grader.assignment import numpy_outputs
from reference_impl import electra
from reference_impl.albert import AlbertBackbone
from reference_impl.layers import get_activation


def accumulate_gradients(micro_gradients, token_counts):
    # Micro-batch i's gradient is (sum of its token gradients) / n_i; the large
    # batch's is (sum of all token gradients) / sum(n_i).
    counts = ops.cast(token_counts, "float32")
    weighted = ops.einsum("k...,k->...", ops.convert_to_tensor(micro_gradients), counts)
    return numpy_outputs(weighted / ops.sum(counts))


@functools.lru_cache(maxsize=None)
def _albert(vocabulary_size, max_sequence_length, embedding_dim, hidden_dim, intermediate_dim,
            num_layers, num_groups):
    return AlbertBackbone(vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=1,
                          embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                          intermediate_dim=intermediate_dim, num_groups=num_groups,
                          max_sequence_length=max_sequence_length)


def albert_parameter_counts(**sizes):
    """(embedding, encoder, total): embeddings + projection, the distinct blocks, everything."""
    backbone = _albert(**sizes)
    embedding = backbone.embeddings.count_params() + backbone.embeddings_projection.count_params()
    encoder = sum(block.count_params() for group in backbone.transformer_layers for block in group)
    return tuple(np.array(n, "int64") for n in (embedding, encoder, backbone.count_params()))


def factorised_embedding(token_ids, token_table, projection_kernel, projection_bias):
    """ALBERT's own token table and projection layer, given the drawn weights."""
    (vocabulary, embedding_dim), hidden_dim = token_table.shape, projection_kernel.shape[1]
    backbone = _albert(vocabulary, 8, embedding_dim, hidden_dim, 2 * hidden_dim, 1, 1)
    backbone.token_embedding.set_weights([token_table])
    backbone.embeddings_projection.set_weights([projection_kernel, projection_bias])
    return numpy_outputs(backbone.embeddings_projection(backbone.token_embedding(token_ids)))


def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
    return numpy_outputs(electra.replaced_token_labels(token_ids, mask_positions, sampled_ids,
                                                original_ids, mask_weights))


def rtd_loss(logits, is_replaced, padding_mask):
    return numpy_outputs(electra.replaced_token_detection_loss(logits, is_replaced, padding_mask))


class ReplacedTokenDetector(keras.layers.Layer):
    """ELECTRA's discriminator head as `reference_impl.electra.ElectraPretrainer` builds it (a Dense
    layer with its activation, then one logit per token) and its loss; the notebook's two Dense
    layers, in the same order."""

    def __init__(self, hidden_dim):
        super().__init__()
        self.dense = keras.layers.Dense(hidden_dim, activation=get_activation("gelu"))
        self.prediction = keras.layers.Dense(1)

    def call(self, sequence_output, is_replaced, padding_mask):
        logits = ops.squeeze(self.prediction(self.dense(sequence_output)), axis=-1)
        return electra.replaced_token_detection_loss(logits, is_replaced, padding_mask), logits


REFERENCES = {
    "accumulate_gradients": accumulate_gradients,
    "albert_parameter_counts": albert_parameter_counts,
    "factorised_embedding": factorised_embedding,
    "replaced_token_labels": replaced_token_labels,
    "replaced_token_detection_loss": rtd_loss,
    "ReplacedTokenDetector": ReplacedTokenDetector,
}
