"""References of the ELMo assignment.

Trusted: never released, never imported inside the sandbox. Each reference
builds the `reference_impl.elmo` piece, gives it the drawn weights and calls it.
"""

import numpy as np

from grader.assignment import numpy_outputs
from reference_impl import elmo


def highway(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    layer = elmo.Highway()
    layer.build(x.shape)
    layer.transform.set_weights([transform_kernel, transform_bias])
    layer.gate.set_weights([gate_kernel, gate_bias])
    return numpy_outputs(layer(x))


def character_cnn(embedded_characters, kernel, bias):
    width, character_dim, count = kernel.shape
    encoder = elmo.CharacterEncoder(filters=((width, count),), character_dim=character_dim,
                                    num_highway=0, projection_dim=1)
    encoder.build((None, None, elmo.MAX_CHARACTERS_PER_TOKEN))
    encoder.convolutions[0].set_weights([kernel, bias])
    return numpy_outputs(encoder.max_pooled_filters(embedded_characters))


def scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    layers = elmo.stack_elmo_layers(token_vectors, list(np.moveaxis(forward_layers, 1, 0)),
                                    list(np.moveaxis(backward_layers, 1, 0)))
    mix = elmo.ScalarMix()
    mix.build(layers.shape)
    mix.layer_weights.assign(layer_weights)
    mix.gamma.assign(gamma)
    return numpy_outputs(mix(layers))


def language_model_targets(word_ids):
    y, weights = elmo.language_model_targets(word_ids)
    return (y["forward_logits"], y["backward_logits"],
            weights["forward_logits"], weights["backward_logits"])


class CharacterEncoder(elmo.CharacterEncoder):
    """reference_impl's token layer; its weights (character table, each width's convolution,
    each highway's transform and gate, the projection) are the notebook's, in the same order."""

    def __init__(self, filters, character_dim, num_highway, projection_dim):
        super().__init__(filters=filters, character_dim=character_dim, num_highway=num_highway,
                         projection_dim=projection_dim)


REFERENCES = {
    "highway": highway,
    "character_cnn": character_cnn,
    "scalar_mix": scalar_mix,
    "language_model_targets": language_model_targets,
    "CharacterEncoder": CharacterEncoder,
}
