"""References and known bugs for the ELMo assignment.

Never imported inside the sandbox. Each reference builds the `reference_impl.elmo`
piece, gives it the drawn weights and calls it; each known bug is the reference
with the bug put in, so feedback can name the mistake.
"""

import numpy as np

from grader.assignments import Case, as_numpy_outputs as _numpy
from reference_impl import elmo


# -- highway ---------------------------------------------------------------

def highway(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    layer = elmo.Highway()
    layer.build(x.shape)
    layer.transform.set_weights([transform_kernel, transform_bias])
    layer.gate.set_weights([gate_kernel, gate_bias])
    return _numpy(layer(x))


def _relu(x):
    return np.maximum(x, 0.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _highway_parts(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    return _relu(x @ transform_kernel + transform_bias), _sigmoid(x @ gate_kernel + gate_bias)


def highway_gate_swapped(x, **weights):
    transform, gate = _highway_parts(x, **weights)
    return ((1.0 - gate) * transform + gate * x,)


def highway_no_relu(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    _, gate = _highway_parts(x, transform_kernel, transform_bias, gate_kernel, gate_bias)
    return (gate * (x @ transform_kernel + transform_bias) + (1.0 - gate) * x,)


def highway_kernels_transposed(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    return highway(x, transform_kernel.T, transform_bias, gate_kernel.T, gate_bias)


def highway_residual(x, **weights):
    transform, _ = _highway_parts(x, **weights)
    return (transform + x,)


HIGHWAY_BUGS = {
    "gate and carry swapped: (1 - g) * relu(...) + g * x": highway_gate_swapped,
    "no relu on the transform": highway_no_relu,
    "kernels used transposed (x @ W.T instead of x @ W)": highway_kernels_transposed,
    "plain residual relu(...) + x, no gate": highway_residual,
}


# -- character CNN -----------------------------------------------------------

def character_cnn(embedded_characters, kernel, bias):
    width, character_dim, count = kernel.shape
    encoder = elmo.CharacterEncoder(filters=((width, count),), character_dim=character_dim,
                                    num_highway=0, projection_dim=1)
    encoder.build((None, None, elmo.MAX_CHARACTERS_PER_TOKEN))
    encoder.convolutions[0].set_weights([kernel, bias])
    return _numpy(encoder.max_pooled_filters(embedded_characters))


def _filter_outputs(embedded_characters, kernel, bias):
    """[N, positions, F] before the relu, valid windows only."""
    windows = np.lib.stride_tricks.sliding_window_view(embedded_characters, kernel.shape[0], axis=1)
    return np.einsum("npcw,wcf->npf", windows, kernel) + bias


CNN_BUGS = {
    "mean over positions instead of max": lambda embedded_characters, kernel, bias: (
        _relu(_filter_outputs(embedded_characters, kernel, bias)).mean(axis=1),),
    "no relu before the max": lambda embedded_characters, kernel, bias: (
        _filter_outputs(embedded_characters, kernel, bias).max(axis=1),),
    "kernel flipped along the window (a true convolution)": lambda embedded_characters, kernel, bias: (
        character_cnn(embedded_characters, kernel[::-1], bias)),
    "bias left out": lambda embedded_characters, kernel, bias: (
        character_cnn(embedded_characters, kernel, np.zeros_like(bias))),
}


# -- scalar mix ---------------------------------------------------------------

def _stacked(token_vectors, forward_layers, backward_layers):
    return elmo.stack_elmo_layers(token_vectors, list(np.moveaxis(forward_layers, 1, 0)),
                                  list(np.moveaxis(backward_layers, 1, 0)))


def scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    layers = _stacked(token_vectors, forward_layers, backward_layers)
    mix = elmo.ScalarMix()
    mix.build(layers.shape)
    mix.layer_weights.assign(layer_weights)
    mix.gamma.assign(gamma)
    return _numpy(mix(layers))


def _mix(layers, weights, gamma):
    return (gamma * np.einsum("l,blti->bti", weights, np.asarray(layers)),)


def _softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


def mix_no_softmax(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    return _mix(_stacked(token_vectors, forward_layers, backward_layers), layer_weights, gamma)


def mix_no_gamma(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    return scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, 1.0)


def mix_token_layer_zero_padded(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    layers = np.array(_stacked(token_vectors, forward_layers, backward_layers))
    layers[:, 0, :, token_vectors.shape[-1]:] = 0.0
    return _mix(layers, _softmax(layer_weights), gamma)


def mix_backward_first(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    return scalar_mix(token_vectors, backward_layers, forward_layers, layer_weights, gamma)


def mix_normalised_by_sum(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    with np.errstate(invalid="ignore", divide="ignore"):  # an even mix's weights sum to 0
        weights = layer_weights / layer_weights.sum()
    return _mix(_stacked(token_vectors, forward_layers, backward_layers), weights, gamma)


MIX_BUGS = {
    "layer weights used without the softmax": mix_no_softmax,
    "gamma left out": mix_no_gamma,
    "token layer zero-padded instead of duplicated": mix_token_layer_zero_padded,
    "[backward; forward] instead of [forward; backward]": mix_backward_first,
    "weights divided by their sum instead of a softmax": mix_normalised_by_sum,
}


# -- language-model targets ----------------------------------------------------

def language_model_targets(word_ids):
    y, weights = elmo.language_model_targets(word_ids)
    return (y["forward_logits"], y["backward_logits"],
            weights["forward_logits"], weights["backward_logits"])


def targets_directions_swapped(word_ids):
    forward, backward, forward_weights, backward_weights = language_model_targets(word_ids)
    return backward, forward, backward_weights, forward_weights


def targets_backward_padding_kept(word_ids):
    forward, _, forward_weights, _ = language_model_targets(word_ids)
    backward = np.zeros_like(word_ids)
    backward[:, 1:] = word_ids[:, :-1]
    return forward, backward, forward_weights, (backward != 0).astype("float32")


def targets_wrapped_around(word_ids):
    forward, backward = np.roll(word_ids, -1, axis=1), np.roll(word_ids, 1, axis=1)
    return forward, backward, (forward != 0).astype("float32"), (backward != 0).astype("float32")


def targets_weights_from_inputs(word_ids):
    forward, backward, _, _ = language_model_targets(word_ids)
    real = (word_ids != 0).astype("float32")
    return forward, backward, real, real


TARGET_BUGS = {
    "forward and backward targets swapped": targets_directions_swapped,
    "backward targets at padding positions (the last word predicted from padding)":
        targets_backward_padding_kept,
    "targets wrapped around (roll) instead of shifted in zeros": targets_wrapped_around,
    "weights mark real input words instead of real targets": targets_weights_from_inputs,
}


CASES = {
    "elmo.highway": Case("highway", highway, HIGHWAY_BUGS),
    "elmo.character_cnn": Case("character_cnn", character_cnn, CNN_BUGS),
    "elmo.scalar_mix_even": Case("scalar_mix", scalar_mix, MIX_BUGS),
    "elmo.scalar_mix_learned": Case("scalar_mix", scalar_mix, MIX_BUGS),
    "elmo.language_model_targets": Case("language_model_targets", language_model_targets,
                                        TARGET_BUGS),
}
