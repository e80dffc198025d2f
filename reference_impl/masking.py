"""Masked-language-model inputs: BERT's 15% selection with 80/10/10 corruption.

A data-pipeline step in NumPy (not model code), so it runs the same beside any
Keras backend. Static masking (BERT) calls `mask_tokens` once per sequence and
reuses the result every epoch; dynamic masking (RoBERTa) calls it afresh each
time a sequence is seen (see `reference_impl.pretraining.MaskedLMDataset`).
`corrupt` is its deterministic core: the 80/10/10 step with the draws given.
"""

import math

import numpy as np


def _replacement_kinds(draws, mask_token_rate, random_token_rate):
    """(to_mask, to_random) for uniform draws in [0, 1); the rest stay unchanged."""
    to_mask = draws < mask_token_rate
    to_random = ~to_mask & (draws < mask_token_rate + random_token_rate)
    return to_mask, to_random


def corrupt(token_ids, selected, draws, random_ids, mask_token_id, mask_token_rate=0.8,
            random_token_rate=0.1):
    """BERT's 80/10/10 corruption of the selected positions, the random draws given.

    A selected position whose uniform draw is below `mask_token_rate` becomes
    `mask_token_id`; one whose draw falls in the next `random_token_rate` takes
    its entry of `random_ids`; every other position keeps its token. Passing the
    draws in makes the corruption a pure function (`mask_tokens` draws them).

    Args:
        token_ids: int array; selected: bool array; draws: floats in [0, 1);
            random_ids: int array of replacement tokens; all the same shape.

    Returns:
        The corrupted token ids, same shape and dtype as `token_ids`.
    """
    token_ids = np.asarray(token_ids)
    selected = np.asarray(selected, dtype=bool)
    to_mask, to_random = _replacement_kinds(np.asarray(draws), mask_token_rate, random_token_rate)
    corrupted = np.where(selected & to_random, random_ids, token_ids)
    return np.where(selected & to_mask, mask_token_id, corrupted).astype(token_ids.dtype)


def mask_tokens(
    token_ids,
    padding_mask,
    special_token_ids,
    vocabulary_size,
    mask_token_id,
    rng,
    selection_rate=0.15,
    mask_token_rate=0.8,
    random_token_rate=0.1,
    max_predictions=None,
):
    """Select positions to predict and corrupt them.

    Of the real, non-special tokens of each sequence, `selection_rate` are
    selected (the count is rounded at random, so the expected rate is exact
    even for short sequences). Each selected token becomes [MASK] with
    probability `mask_token_rate`, a uniformly random non-special token with
    probability `random_token_rate`, and stays unchanged otherwise: the model
    must predict every selected token, so it cannot learn that only [MASK]
    positions matter.

    Args:
        token_ids: int [B, T].
        padding_mask: [B, T], nonzero for real tokens; padding is never selected.
        special_token_ids: ids never selected ([CLS], [SEP], [PAD], ...).
        vocabulary_size: size of the vocabulary random replacements come from.
        mask_token_id: the [MASK] id.
        rng: a `numpy.random.Generator`.
        max_predictions: P, the width of the outputs; defaults to
            ceil(selection_rate * T), enough for any sequence.

    Returns:
        dict of int32 arrays: `token_ids` [B, T] (corrupted), `mask_positions`
        [B, P], `mask_ids` [B, P] (the original tokens) and float32
        `mask_weights` [B, P] (1 for a real prediction, 0 for padding slots).
    """
    token_ids = np.asarray(token_ids)
    batch, length = token_ids.shape
    if max_predictions is None:
        max_predictions = max(1, math.ceil(selection_rate * length))
    specials = np.array(sorted(special_token_ids), dtype=token_ids.dtype)
    candidates = (np.asarray(padding_mask) != 0) & ~np.isin(token_ids, specials)
    replacement_pool = np.setdiff1d(np.arange(vocabulary_size), specials)

    corrupted = token_ids.copy()
    mask_positions = np.zeros((batch, max_predictions), dtype="int32")
    mask_ids = np.zeros((batch, max_predictions), dtype="int32")
    mask_weights = np.zeros((batch, max_predictions), dtype="float32")
    for row in range(batch):
        positions = np.flatnonzero(candidates[row])
        count = int(np.floor(selection_rate * len(positions) + rng.random()))
        count = min(count, max_predictions)
        chosen = np.sort(rng.choice(positions, size=count, replace=False))
        draws = rng.random(count)
        random_ids = np.zeros(count, dtype=token_ids.dtype)
        to_random = _replacement_kinds(draws, mask_token_rate, random_token_rate)[1]
        random_ids[to_random] = rng.choice(replacement_pool, size=to_random.sum())
        corrupted[row, chosen] = corrupt(token_ids[row, chosen], np.ones(count, bool), draws,
                                         random_ids, mask_token_id, mask_token_rate,
                                         random_token_rate)
        mask_positions[row, :count] = chosen
        mask_ids[row, :count] = token_ids[row, chosen]
        mask_weights[row, :count] = 1.0
    return {
        "token_ids": corrupted.astype("int32"),
        "mask_positions": mask_positions,
        "mask_ids": mask_ids,
        "mask_weights": mask_weights,
    }
