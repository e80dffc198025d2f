"""References and known bugs for the BERT assignment.

Never imported inside the sandbox. References come from `reference_impl`:
`masking.corrupt` (the 80/10/10 step of `mask_tokens`), the `Embeddings`
layer and the `SequenceClassifier` head, given the drawn weights; the MLM loss
is the masked mean `reference_impl` trains on real targets with (Keras'
`SparseCategoricalCrossentropy(reduction="mean_with_sample_weight")`, as in
`gpt.compile_causal_lm`). Each known bug is the reference with the bug put in,
so feedback can name the mistake when a student's outputs match it.
"""

import functools

import keras
import numpy as np

from grader.assignments import Case, as_numpy_outputs as _numpy
from reference_impl import layers, masking
from reference_impl.heads import SequenceClassifier

MASK_RATE, RANDOM_RATE = 0.8, 0.1
LAYER_NORM_EPSILON = 1e-12


# -- MLM corruption ---------------------------------------------------------


def corrupt(token_ids, selected, draws, random_ids, mask_token_id):
    return (masking.corrupt(token_ids, selected, draws, random_ids, mask_token_id,
                            MASK_RATE, RANDOM_RATE),)


def all_selected_masked(token_ids, selected, draws, random_ids, mask_token_id):
    return (masking.corrupt(token_ids, selected, draws, random_ids, mask_token_id, 1.0, 0.0),)


def random_and_kept_swapped(token_ids, selected, draws, random_ids, mask_token_id):
    # Moves draws in [0.8, 0.9) to [0.9, 1) and back: the 10% kept becomes the 10% replaced.
    swapped = np.where(draws >= MASK_RATE, np.where(draws < 0.9, draws + 0.1, draws - 0.1), draws)
    return corrupt(token_ids, selected, swapped, random_ids, mask_token_id)


def unselected_corrupted(token_ids, selected, draws, random_ids, mask_token_id):
    return corrupt(token_ids, np.ones_like(selected), draws, random_ids, mask_token_id)


def mask_and_random_swapped(token_ids, selected, draws, random_ids, mask_token_id):
    to_random = selected & (draws < MASK_RATE)
    to_mask = selected & (draws >= MASK_RATE) & (draws < MASK_RATE + RANDOM_RATE)
    return (np.where(to_mask, mask_token_id, np.where(to_random, random_ids, token_ids)),)


def random_ids_for_kept(token_ids, selected, draws, random_ids, mask_token_id):
    to_mask = selected & (draws < MASK_RATE)
    return (np.where(to_mask, mask_token_id, np.where(selected, random_ids, token_ids)),)


CORRUPTION_BUGS = {
    "every selected token becomes [MASK] (no 10% random, no 10% kept)": all_selected_masked,
    "random and kept shares swapped (draws of 0.9 and above take the random token)":
        random_and_kept_swapped,
    "tokens that were not selected are corrupted too": unselected_corrupted,
    "[MASK] and random replacement swapped (80% random tokens)": mask_and_random_swapped,
    "the 10% meant to stay unchanged get random tokens too": random_ids_for_kept,
}


# -- MLM loss ----------------------------------------------------------------


def _cross_entropy(labels, logits, weights, reduction="mean_with_sample_weight", from_logits=True):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=reduction)
    return _numpy(loss(labels, logits, sample_weight=weights))


def masked_lm_loss(logits, labels, weights):
    return _cross_entropy(labels, logits, weights)


def _token_losses(logits, labels):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, labels[..., None].astype(int), axis=-1)[..., 0]


MLM_LOSS_BUGS = {
    "mean over every prediction slot, padding slots included":
        lambda logits, labels, weights: _cross_entropy(labels, logits, weights, "sum_over_batch_size"),
    "weights ignored (padding slots predicted too)":
        lambda logits, labels, weights: _cross_entropy(labels, logits, None),
    "sum instead of mean":
        lambda logits, labels, weights: _cross_entropy(labels, logits, weights, "sum"),
    "divided by the batch size instead of the number of real predictions":
        lambda logits, labels, weights: (np.float32((_token_losses(logits, labels) * weights).sum()
                                                    / len(logits)),),
    "logits used as probabilities (no softmax)":
        lambda logits, labels, weights: _cross_entropy(labels, logits, weights, from_logits=False),
}


# -- Embeddings --------------------------------------------------------------


def embeddings(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
    layer = layers.Embeddings(len(token_table), len(position_table), token_table.shape[1],
                              num_segments=len(segment_table),
                              layer_norm_epsilon=LAYER_NORM_EPSILON)
    layer.build(token_ids.shape)
    layer.set_weights([token_table, position_table, segment_table, gamma, beta])
    return _numpy(layer(token_ids, segment_ids))


def _layer_norm(x, gamma, beta, epsilon=LAYER_NORM_EPSILON, axis=-1):
    mean = x.mean(axis=axis, keepdims=True)
    variance = x.var(axis=axis, keepdims=True)
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


def _embedding_sum(token_ids, segment_ids, token_table, position_table, segment_table,
                   positions=True, segments=True):
    x = token_table[token_ids]
    if positions:
        x = x + position_table[: token_ids.shape[1]][None]
    if segments:
        x = x + segment_table[segment_ids]
    return x


def _embedding_bug(normalize, **sum_options):
    def buggy(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
        x = _embedding_sum(token_ids, segment_ids, token_table, position_table, segment_table,
                           **sum_options)
        return (normalize(x, gamma, beta).astype("float32"),)
    return buggy


EMBEDDING_BUGS = {
    "no position embeddings": _embedding_bug(_layer_norm, positions=False),
    "no segment embeddings": _embedding_bug(_layer_norm, segments=False),
    "no LayerNorm": _embedding_bug(lambda x, gamma, beta: x),
    "LayerNorm without its scale and offset (gamma, beta)":
        _embedding_bug(lambda x, gamma, beta: _layer_norm(x, 1.0, 0.0)),
    "LayerNorm with Keras' default epsilon 1e-3 instead of BERT's 1e-12":
        _embedding_bug(lambda x, gamma, beta: _layer_norm(x, gamma, beta, epsilon=1e-3)),
    "LayerNorm over the sequence axis instead of the hidden axis":
        _embedding_bug(lambda x, gamma, beta: _layer_norm(x, gamma, beta, axis=1)),
}


# -- [CLS] classification head ----------------------------------------------


@functools.lru_cache(maxsize=None)
def _classifier(width, num_classes):
    """reference_impl's SequenceClassifier reading position 0 of a stand-in backbone."""
    sequence_output = keras.Input(shape=(None, width), name="sequence_output")
    backbone = keras.Model(sequence_output, {
        "sequence_output": keras.layers.Identity()(sequence_output),
        "pooled_output": sequence_output[:, 0, :]})
    return SequenceClassifier(backbone, num_classes, dropout=0.0, pooling="first")


def _softmax(logits, axis=-1):
    exp = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return exp / exp.sum(axis=axis, keepdims=True)


def classification_head(sequence_output, kernel, bias):
    classifier = _classifier(*kernel.shape)
    classifier.set_weights([kernel, bias])
    logits = keras.ops.convert_to_numpy(classifier(sequence_output))
    return (_softmax(logits).astype("float32"),)


def _head_bug(pool=lambda h: h[:, 0], use_bias=True, probabilities=_softmax):
    def buggy(sequence_output, kernel, bias):
        logits = pool(sequence_output) @ kernel + (bias if use_bias else 0.0)
        return (probabilities(logits).astype("float32"),)
    return buggy


HEAD_BUGS = {
    "mean over all positions instead of the [CLS] vector": _head_bug(pool=lambda h: h.mean(axis=1)),
    "last position instead of [CLS] (position 0)": _head_bug(pool=lambda h: h[:, -1]),
    "logits returned, no softmax": _head_bug(probabilities=lambda logits: logits),
    "softmax over the batch axis": _head_bug(probabilities=lambda logits: _softmax(logits, axis=0)),
    "sigmoid instead of softmax": _head_bug(probabilities=lambda logits: 1 / (1 + np.exp(-logits))),
    "bias left out": _head_bug(use_bias=False),
}


CASES = {
    "bert.corruption": Case("corrupt", corrupt, CORRUPTION_BUGS),
    "bert.masked_lm_loss": Case("masked_lm_loss", masked_lm_loss, MLM_LOSS_BUGS),
    "bert.embeddings": Case("bert_embeddings", embeddings, EMBEDDING_BUGS),
    "bert.classification_head": Case("classify_from_cls", classification_head, HEAD_BUGS),
}
