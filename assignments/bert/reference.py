"""References of the BERT assignment.

Trusted: never released, never imported inside the sandbox. References come
from `reference_impl`: `masking.corrupt` (the 80/10/10 step of `mask_tokens`),
the `Embeddings` layer and the `SequenceClassifier` head, given the drawn
weights; the MLM loss is the masked mean `reference_impl` trains on real
targets with (Keras' `SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")`,
as in `gpt.compile_causal_lm`).
"""

import functools

import keras
import numpy as np

from grader.assignment import numpy_outputs
from reference_impl import layers, masking
from reference_impl.heads import SequenceClassifier

MASK_RATE, RANDOM_RATE = 0.8, 0.1
LAYER_NORM_EPSILON = 1e-12


def corrupt(token_ids, selected, draws, random_ids, mask_token_id):
    return (masking.corrupt(token_ids, selected, draws, random_ids, mask_token_id,
                            MASK_RATE, RANDOM_RATE),)


def masked_lm_loss(logits, labels, weights):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")
    return numpy_outputs(loss(labels, logits, sample_weight=weights))


def embeddings(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
    layer = layers.Embeddings(len(token_table), len(position_table), token_table.shape[1],
                              num_segments=len(segment_table),
                              layer_norm_epsilon=LAYER_NORM_EPSILON)
    layer.build(token_ids.shape)
    layer.set_weights([token_table, position_table, segment_table, gamma, beta])
    return numpy_outputs(layer(token_ids, segment_ids))


@functools.lru_cache(maxsize=None)
def _classifier(width, num_classes):
    """reference_impl's SequenceClassifier reading position 0 of a stand-in backbone."""
    sequence_output = keras.Input(shape=(None, width), name="sequence_output")
    backbone = keras.Model(sequence_output, {
        "sequence_output": keras.layers.Identity()(sequence_output),
        "pooled_output": sequence_output[:, 0, :]})
    return SequenceClassifier(backbone, num_classes, dropout=0.0, pooling="first")


def classification_head(sequence_output, kernel, bias):
    classifier = _classifier(*kernel.shape)
    classifier.set_weights([kernel, bias])
    logits = keras.ops.convert_to_numpy(classifier(sequence_output))
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return ((exp / exp.sum(axis=-1, keepdims=True)).astype("float32"),)


class EncoderBlock(layers.TransformerBlock):
    """reference_impl's post-LayerNorm block as BERT uses it (exact GELU, LayerNorm epsilon 1e-12);
    its weights are the notebook's, in the same order."""

    def __init__(self, num_heads, hidden_dim, intermediate_dim):
        super().__init__(num_heads, hidden_dim, intermediate_dim, activation="gelu", layer_norm_epsilon=1e-12,
                         use_fused_attention=False)


REFERENCES = {
    "corrupt": corrupt,
    "masked_lm_loss": masked_lm_loss,
    "bert_embeddings": embeddings,
    "classify_from_cls": classification_head,
    "EncoderBlock": EncoderBlock,
}
