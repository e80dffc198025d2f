"""Inputs shared by the model tests."""

import numpy as np


def random_encoder_inputs(vocabulary_size, batch, length, seed, num_segments=2):
    """Random ids, two segments and right padding of varied lengths (at least 2 real tokens)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, length + 1, size=batch)
    lengths[0] = length  # one full row
    padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
    token_ids = rng.integers(1, vocabulary_size, size=(batch, length)).astype("int32") * padding_mask
    split = rng.integers(1, length, size=batch)
    segment_ids = ((np.arange(length)[None, :] >= split[:, None]) & (num_segments > 1)).astype("int32")
    return {"token_ids": token_ids, "segment_ids": segment_ids * padding_mask,
            "padding_mask": padding_mask}
