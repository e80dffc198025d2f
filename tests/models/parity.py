"""Comparing our models with keras-hub's on both attention paths."""

import keras
import numpy as np


def set_fused_attention(backbone, fused):
    for layer in backbone._flatten_layers():
        if hasattr(layer, "use_fused_attention") and hasattr(layer, "query_dense"):
            layer.use_fused_attention = fused


def max_abs_error(a, b):
    return float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))


def assert_match_on_both_attention_paths(ours, inputs, expected, tolerance=1e-5):
    """`ours(inputs)` equals `expected` (dict of outputs) with fused and plain attention."""
    for fused in (True, False):
        set_fused_attention(ours, fused)
        got = ours(inputs)
        for key, value in expected.items():
            error = max_abs_error(got[key], value)
            assert error < tolerance, (key, f"fused={fused}", error)
    set_fused_attention(ours, True)
