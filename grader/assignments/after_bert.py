"""References and known bugs for the after-BERT assignment (RoBERTa, ALBERT, ELECTRA).

Never imported inside the sandbox. References come from `reference_impl`:
parameter counts and the factorised embedding from a real `AlbertBackbone`
(its layers given the drawn weights), the replaced-token labels and the RTD
loss from `reference_impl.electra`. Gradient accumulation is the weighted
mean that makes k micro-batches of a token-averaged loss (the kit's MLM and
RTD losses, sums over real tokens divided by their count) give the
large-batch gradient. Each known bug is the reference with the bug put in,
so feedback can name the mistake when a student's outputs match it.
"""

import functools

import numpy as np
from keras import ops

from grader.assignments import Case, as_numpy_outputs as _numpy
from reference_impl import electra
from reference_impl.albert import AlbertBackbone

# -- Gradient accumulation ---------------------------------------------------


def _token_weighted_mean(micro_gradients, weights):
    weights = np.asarray(weights, "float64").reshape((-1,) + (1,) * (micro_gradients.ndim - 1))
    return ((micro_gradients * weights).sum(axis=0) / weights.sum()).astype("float32")


def accumulate_gradients(micro_gradients, token_counts):
    # Micro-batch i's gradient is (sum of its token gradients) / n_i; the large
    # batch's is (sum of all token gradients) / sum(n_i).
    counts = ops.cast(token_counts, "float32")
    weighted = ops.einsum("k...,k->...", ops.convert_to_tensor(micro_gradients), counts)
    return _numpy(weighted / ops.sum(counts))


ACCUMULATION_BUGS = {
    "plain mean of the micro-batch gradients (right only when every micro-batch "
    "holds as many tokens)": lambda micro_gradients, token_counts: (micro_gradients.mean(axis=0),),
    "sum of the micro-batch gradients (k times too large a step)":
        lambda micro_gradients, token_counts: (micro_gradients.sum(axis=0),),
    "weighted by the counts but not divided by the total count":
        lambda micro_gradients, token_counts: (
            _token_weighted_mean(micro_gradients, token_counts) * np.float32(token_counts.sum()),),
    "weighted by the counts, divided by the number of micro-batches":
        lambda micro_gradients, token_counts: (
            _token_weighted_mean(micro_gradients, token_counts) * np.float32(
                token_counts.sum() / len(token_counts)),),
    "weighted by 1 / count instead of by count":
        lambda micro_gradients, token_counts: (_token_weighted_mean(micro_gradients, 1.0 / token_counts),),
    "only the last micro-batch's gradient":
        lambda micro_gradients, token_counts: (micro_gradients[-1],),
}


# -- ALBERT parameter counts -------------------------------------------------


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


def _adjusted(sizes_change=None, embedding=lambda s: 0, block=lambda s: 0, pooler=True):
    """The reference counts for changed sizes, with the embedding and each block off by the bug."""
    def buggy(**sizes):
        changed = {**sizes, **(sizes_change(sizes) if sizes_change else {})}
        e, enc, total = (int(n) for n in albert_parameter_counts(**changed))
        pooler_params = total - e - enc
        e += embedding(sizes)
        enc += sizes["num_groups"] * block(sizes)
        return tuple(np.array(n, "int64") for n in (e, enc, e + enc + pooler * pooler_params))
    return buggy


COUNT_BUGS = {
    "a separate block for every layer (no cross-layer sharing)":
        _adjusted(lambda s: {"num_groups": s["num_layers"]}),
    "token table V*H, as in BERT, instead of V*E":
        _adjusted(embedding=lambda s: s["vocabulary_size"] * (s["hidden_dim"] - s["embedding_dim"])),
    "embedding projection E->H left out": _adjusted(embedding=lambda s: -(s["embedding_dim"] + 1)
                                                    * s["hidden_dim"]),
    "projection bias left out": _adjusted(embedding=lambda s: -s["hidden_dim"]),
    "pooler left out of the total": _adjusted(pooler=False),
    "one LayerNorm per block instead of two": _adjusted(block=lambda s: -2 * s["hidden_dim"]),
    "three attention projections (the output projection forgotten)":
        _adjusted(block=lambda s: -(s["hidden_dim"] + 1) * s["hidden_dim"]),
    "feed-forward biases left out":
        _adjusted(block=lambda s: -(s["hidden_dim"] + s["intermediate_dim"])),
    "no position or segment tables":
        _adjusted(embedding=lambda s: -(s["max_sequence_length"] + 2) * s["embedding_dim"]),
}


# -- Factorised embedding ----------------------------------------------------


def factorised_embedding(token_ids, token_table, projection_kernel, projection_bias):
    """ALBERT's own token table and projection layer, given the drawn weights."""
    (vocabulary, embedding_dim), hidden_dim = token_table.shape, projection_kernel.shape[1]
    backbone = _albert(vocabulary, 8, embedding_dim, hidden_dim, 2 * hidden_dim, 1, 1)
    backbone.token_embedding.set_weights([token_table])
    backbone.embeddings_projection.set_weights([projection_kernel, projection_bias])
    return _numpy(backbone.embeddings_projection(backbone.token_embedding(token_ids)))


def _projected(transform=lambda table, kernel, bias, ids: table[ids] @ kernel + bias):
    def buggy(token_ids, token_table, projection_kernel, projection_bias):
        return (np.asarray(transform(token_table, projection_kernel, projection_bias, token_ids),
                           "float32"),)
    return buggy


EMBEDDING_BUGS = {
    "projection bias left out": _projected(lambda table, kernel, bias, ids: table[ids] @ kernel),
    "a tanh after the projection (ALBERT's projection is linear)":
        _projected(lambda table, kernel, bias, ids: np.tanh(table[ids] @ kernel + bias)),
    "a GELU after the projection (ALBERT's projection is linear)":
        _projected(lambda table, kernel, bias, ids: (lambda x: 0.5 * x * (1 + np.tanh(
            np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))))(table[ids] @ kernel + bias)),
    "the E-dim lookup returned, zero-padded to H":
        _projected(lambda table, kernel, bias, ids: np.pad(
            table[ids], [(0, 0), (0, 0), (0, kernel.shape[1] - table.shape[1])])),
}


# -- ELECTRA: replaced-token labels and the RTD loss -------------------------


def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
    return _numpy(electra.replaced_token_labels(token_ids, mask_positions, sampled_ids,
                                                original_ids, mask_weights))


def _scatter(token_ids, positions, values, weights):
    out = np.array(token_ids)
    for row in range(len(out)):
        real = weights[row] > 0
        out[row, positions[row][real]] = values[row][real]
    return out


def _labels_bug(corrupted_of, labels_of):
    def buggy(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
        corrupted = corrupted_of(token_ids, mask_positions, sampled_ids, original_ids, mask_weights)
        original = _scatter(token_ids, mask_positions, original_ids, mask_weights)
        labels = labels_of(token_ids, corrupted, original, mask_positions, mask_weights)
        return corrupted.astype("int32"), labels.astype("float32")
    return buggy


def _right_corruption(token_ids, positions, sampled, original_ids, weights):
    return _scatter(token_ids, positions, sampled, weights)


def _masked_positions(token_ids, positions, weights):
    return _scatter(np.zeros_like(token_ids), positions, np.ones_like(positions), weights)


LABEL_BUGS = {
    "every masked position labelled replaced, even where the generator guessed right "
    "(or the samples compared with the [MASK] input instead of the original tokens)":
        _labels_bug(_right_corruption,
                    lambda ids, corrupted, original, positions, weights: _masked_positions(ids, positions, weights)),
    "labels inverted (1 = original)":
        _labels_bug(_right_corruption, lambda ids, corrupted, original, *_: corrupted == original),
    "padding slots of the prediction list written too (position 0 overwritten)":
        _labels_bug(lambda ids, positions, sampled, original_ids, weights:
                    _scatter(ids, positions, sampled, np.ones_like(weights)),
                    lambda ids, corrupted, original, *_: corrupted != original),
    "the samples never written: the discriminator reads [MASK]":
        _labels_bug(lambda ids, *_: np.array(ids), lambda ids, corrupted, original, *_: corrupted != original),
}


def rtd_loss(logits, is_replaced, padding_mask):
    return _numpy(electra.replaced_token_detection_loss(logits, is_replaced, padding_mask))


def _bce(logits, labels):
    return np.logaddexp(0.0, logits.astype("float64")) - labels * logits


def _rtd_bug(token_losses=_bce, reduce=lambda losses, mask: (losses * mask).sum() / mask.sum()):
    def buggy(logits, is_replaced, padding_mask):
        losses = token_losses(logits, is_replaced)
        return (np.float32(reduce(losses, padding_mask.astype("float64"))),)
    return buggy


RTD_BUGS = {
    "padding tokens included in the mean": _rtd_bug(reduce=lambda losses, mask: losses.mean()),
    "labels inverted (1 = original)":
        _rtd_bug(token_losses=lambda logits, labels: _bce(logits, 1.0 - labels)),
    "sum over real tokens instead of the mean": _rtd_bug(reduce=lambda losses, mask: (losses * mask).sum()),
    "mean of per-sequence means (short sequences weigh more)":
        _rtd_bug(reduce=lambda losses, mask: ((losses * mask).sum(1) / mask.sum(1)).mean()),
    "real-token sum divided by the number of sequences":
        _rtd_bug(reduce=lambda losses, mask: (losses * mask).sum() / len(mask)),
    "squared error of the probabilities instead of cross-entropy":
        _rtd_bug(token_losses=lambda logits, labels: (1 / (1 + np.exp(-logits.astype("float64"))) - labels) ** 2),
    "sign of the logits flipped (sigmoid(-x))":
        _rtd_bug(token_losses=lambda logits, labels: _bce(-logits, labels)),
}


CASES = {
    "after_bert.gradient_accumulation": Case("accumulate_gradients", accumulate_gradients,
                                             ACCUMULATION_BUGS),
    "after_bert.albert_counts": Case("albert_parameter_counts", albert_parameter_counts, COUNT_BUGS),
    "after_bert.factorised_embedding": Case("factorised_embedding", factorised_embedding,
                                            EMBEDDING_BUGS),
    "after_bert.replaced_labels": Case("replaced_token_labels", replaced_token_labels, LABEL_BUGS),
    "after_bert.rtd_loss": Case("replaced_token_detection_loss", rtd_loss, RTD_BUGS),
}
