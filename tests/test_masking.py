"""MLM masking: BERT's 15% / 80-10-10 statistics, specials, dynamic masking."""

import numpy as np

from reference_impl.masking import mask_tokens
from reference_impl.pretraining import MaskedLMDataset

SPECIALS = {0, 1, 2, 3}  # pad, cls, sep, mask
MASK_ID, VOCAB = 3, 1000


def make_batch(rng, batch=1000, length=128):
    lengths = rng.integers(20, length + 1, size=batch)
    padding_mask = (np.arange(length)[None] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(4, VOCAB, size=(batch, length)) * padding_mask
    token_ids[:, 0] = 1
    token_ids[np.arange(batch), lengths - 1] = 2
    return token_ids.astype("int32"), padding_mask


def test_selection_and_corruption_rates_on_100k_tokens():
    rng = np.random.default_rng(0)
    token_ids, padding_mask = make_batch(rng, batch=1600)
    candidates = (padding_mask == 1) & ~np.isin(token_ids, list(SPECIALS))
    assert candidates.sum() > 100_000
    out = mask_tokens(token_ids, padding_mask, SPECIALS, VOCAB, MASK_ID, rng)
    weights = out["mask_weights"].astype(bool)
    selected = weights.sum()
    assert abs(selected / candidates.sum() - 0.15) < 0.005

    rows = np.nonzero(weights)[0]
    positions = out["mask_positions"][weights]
    new = out["token_ids"][rows, positions]
    original = out["mask_ids"][weights]
    np.testing.assert_array_equal(original, token_ids[rows, positions])
    masked = new == MASK_ID
    unchanged = new == original
    randomised = ~masked & ~unchanged
    # A random replacement can draw the original token (1 in 996): count it as unchanged,
    # as the model sees it; expected rate of that is 0.1/996, far below the tolerance.
    for observed, expected in ((masked, 0.8), (randomised, 0.1), (unchanged, 0.1)):
        assert abs(observed.mean() - expected) < 0.005, (observed.mean(), expected)


def test_special_and_padding_tokens_are_never_selected_or_changed():
    rng = np.random.default_rng(1)
    token_ids, padding_mask = make_batch(rng, batch=300)
    out = mask_tokens(token_ids, padding_mask, SPECIALS, VOCAB, MASK_ID, rng)
    weights = out["mask_weights"].astype(bool)
    rows = np.nonzero(weights)[0]
    chosen = token_ids[rows, out["mask_positions"][weights]]
    assert not np.isin(chosen, list(SPECIALS)).any()
    assert (padding_mask[rows, out["mask_positions"][weights]] == 1).all()
    untouched = np.isin(token_ids, list(SPECIALS)) | (padding_mask == 0)
    np.testing.assert_array_equal(out["token_ids"][untouched], token_ids[untouched])
    # Random replacements are never special tokens either.
    assert not np.isin(out["token_ids"][~untouched], [0, 1, 2]).any()


def test_dynamic_masking_differs_between_epochs_static_does_not():
    rng = np.random.default_rng(2)
    token_ids, padding_mask = make_batch(rng, batch=16)
    features = {"token_ids": token_ids, "padding_mask": padding_mask}
    masking = dict(special_token_ids=SPECIALS, vocabulary_size=VOCAB, mask_token_id=MASK_ID)

    def two_epochs(dynamic):
        data = MaskedLMDataset(features, masking, batch_size=16, dynamic=dynamic, shuffle=False)
        first = data[0][0]["mask_positions"].copy()
        data.on_epoch_end()
        return first, data[0][0]["mask_positions"]

    first, second = two_epochs(dynamic=True)
    assert (first != second).any()
    first, second = two_epochs(dynamic=False)
    np.testing.assert_array_equal(first, second)
    # Reproducible: the same seed gives the same dynamic masks.
    np.testing.assert_array_equal(two_epochs(True)[1], two_epochs(True)[1])


def test_full_sentence_packing_fills_rows_and_marks_document_boundaries():
    from reference_impl.pretraining import pack_sentences

    documents = [[[5] * 3, [6] * 4], [[7] * 2, [8] * 5], [[9] * 9]]
    packed = pack_sentences(documents, 10, start_id=1, end_id=2, pad_id=0, document_separator_id=2)
    rows = [list(r[m == 1]) for r, m in zip(packed["token_ids"], packed["padding_mask"])]
    assert rows == [
        [1, 5, 5, 5, 6, 6, 6, 6, 2],       # 7 tokens; [SEP]+[7,7] would make 10 > 8
        [1, 7, 7, 8, 8, 8, 8, 8, 2],
        [1, 9, 9, 9, 9, 9, 9, 9, 9, 2],    # a long sentence is cut to the row budget
    ]
    documents = [[[5] * 2], [[6] * 2]]
    packed = pack_sentences(documents, 10, start_id=1, end_id=2, pad_id=0, document_separator_id=3)
    assert list(packed["token_ids"][0][packed["padding_mask"][0] == 1]) == [1, 5, 5, 3, 6, 6, 2]


def test_corrupt_applies_80_10_10_by_the_given_draws():
    from reference_impl.masking import corrupt

    token_ids = np.array([10, 11, 12, 13, 14, 15])
    selected = np.array([True, True, True, True, False, False])
    draws = np.array([0.0, 0.79, 0.85, 0.95, 0.1, 0.85])  # mask, mask, random, keep, unselected x2
    random_ids = np.array([20, 21, 22, 23, 24, 25])
    np.testing.assert_array_equal(corrupt(token_ids, selected, draws, random_ids, mask_token_id=3),
                                  [3, 3, 22, 13, 14, 15])
    # ELECTRA's setting: no random replacements, 85% [MASK].
    np.testing.assert_array_equal(
        corrupt(token_ids, selected, draws, random_ids, 3, mask_token_rate=0.85, random_token_rate=0.0),
        [3, 3, 12, 13, 14, 15])
