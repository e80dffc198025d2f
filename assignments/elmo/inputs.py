"""Graded inputs of the ELMo assignment (drawn fresh from a seed at grading time).

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed.
"""

import numpy as np

CHARACTERS_PER_TOKEN = 50
# Character ids as ELMo stores them (bilm-tf's + 1): bytes 1..256, markers above.
BEGIN_WORD, END_WORD, PADDING = 259, 260, 261
NUM_CHARACTERS = 262


def _normal(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype("float32")


def highway(rng):
    """A square highway layer (a transposed kernel still runs, so it must change the output) on
    [batch, tokens, width] inputs, two draws; the gate bias starts negative, as in ELMo, so
    gate and carry weigh differently."""
    calls = []
    for tokens, width in ((int(rng.integers(3, 5)), int(rng.integers(5, 8))), (int(rng.integers(8, 11)), 5)):
        calls.append(dict(x=_normal(rng, 2, tokens, width),
                          transform_kernel=_normal(rng, width, width, scale=0.5),
                          transform_bias=_normal(rng, width, scale=0.5),
                          gate_kernel=_normal(rng, width, width, scale=0.5),
                          gate_bias=(-2.0 + _normal(rng, width, scale=0.5)).astype("float32")))
    return calls


def _character_ids(rng, count):
    """[count, 50]: words of random bytes between markers, then padding. One word fills all 50
    characters (its end reaches the last window), one has a single byte."""
    ids = np.full((count, CHARACTERS_PER_TOKEN), PADDING)
    lengths = rng.integers(2, 12, size=count)
    lengths[:2] = CHARACTERS_PER_TOKEN - 2, 1
    for row, length in enumerate(rng.permutation(lengths)):
        ids[row, : length + 2] = [BEGIN_WORD, *rng.integers(98, 123, size=length), END_WORD]
    return ids


def _embedded_words(rng, count, character_dim):
    """[count, 50, c]: `_character_ids` looked up in a table."""
    table = _normal(rng, NUM_CHARACTERS, character_dim)
    return table[_character_ids(rng, count)]


def _convolution(rng, width, character_dim, count):
    bias = _normal(rng, count, scale=0.5)
    bias[0] = -100.0  # a filter that never fires: its pooled value is relu's 0
    return dict(kernel=_normal(rng, width, character_dim, count, scale=0.5), bias=bias)


def character_cnn(rng):
    """Two filter widths (narrow and wide) over six embedded words, one of them the full
    50 characters long; one filter never fires (its max is relu's 0)."""
    character_dim = int(rng.choice([3, 4, 5]))
    return [dict(embedded_characters=_embedded_words(rng, 6, character_dim),
                 **_convolution(rng, width, character_dim, int(rng.integers(4, 8))))
            for width in (int(rng.integers(2, 5)), int(rng.integers(5, 8)))]


def _layers(rng, batch, num_lstm_layers, length, width):
    return dict(token_vectors=_normal(rng, batch, length, width),
                forward_layers=_normal(rng, batch, num_lstm_layers, length, width),
                backward_layers=_normal(rng, batch, num_lstm_layers, length, width))


def scalar_mix_even(rng):
    """The mix a task starts from: weights zero (an even mix), gamma one."""
    layers = _layers(rng, 2, 2, int(rng.integers(3, 6)), int(rng.integers(3, 6)))
    return [dict(**layers, layer_weights=np.zeros(3, "float32"), gamma=np.float32(1.0))]


def scalar_mix_learned(rng):
    """Learned weights far from an even mix and a gamma other than 1, with 2 LSTM layers and
    with 1 or 3 (the depth read from the inputs, not assumed)."""
    calls = []
    for num_lstm_layers in (2, int(rng.choice([1, 3]))):
        layers = _layers(rng, 2, num_lstm_layers, int(rng.integers(3, 6)), int(rng.integers(3, 6)))
        weights = _normal(rng, num_lstm_layers + 1)
        weights[0] += 1.5  # a sum that is never near zero, and far from an even mix
        calls.append(dict(**layers, layer_weights=weights,
                          gamma=np.float32(rng.uniform(0.3, 3.0))))
    return calls


def language_model_targets(rng):
    """Word ids [B, T] as a batch holds them: <S>=2 ... </S>=3, then padding 0; one full row,
    every other row padded, rows of different lengths."""
    batch, length = 4, int(rng.integers(7, 11))
    lengths = rng.choice(np.arange(3, length), size=batch, replace=False)
    lengths[rng.integers(batch)] = length
    ids = np.zeros((batch, length), "int32")
    for row, n in enumerate(lengths):
        ids[row, :n] = [2, *rng.integers(4, 50, size=n - 2), 3]
    return [dict(word_ids=ids)]


def character_encoder(rng):
    """The whole token layer with the grader's weights, outputs and gradients, two calls: two
    filter widths (the wide one reaches the end of a 50-character word, one filter never fires),
    one then two highway layers (they must chain, each with its own weights), a projection to a
    width other than the filter total, and batch and sequence lengths that differ."""
    calls = []
    for batch, length, num_highway in ((2, 3, 1), (3, 2, 2)):
        character_dim = int(rng.choice([3, 4, 5]))
        filters = [(int(rng.integers(1, 4)), int(rng.integers(3, 6))), (int(rng.integers(5, 8)), int(rng.integers(3, 6)))]
        total = sum(count for _, count in filters)
        projection_dim = total + int(rng.integers(1, 4))
        weights = [_normal(rng, NUM_CHARACTERS, character_dim)]
        for width, count in filters:
            weights += _convolution(rng, width, character_dim, count).values()
        for _ in range(num_highway):  # transform then gate, each a kernel and a bias
            weights += [_normal(rng, total, total, scale=total ** -0.5), _normal(rng, total, scale=0.5),
                        _normal(rng, total, total, scale=total ** -0.5), (-1.0 + _normal(rng, total, scale=0.5))]
        weights += [_normal(rng, total, projection_dim, scale=total ** -0.5), _normal(rng, projection_dim, scale=0.1)]
        calls.append(dict(config=dict(filters=filters, character_dim=character_dim, num_highway=num_highway,
                                      projection_dim=projection_dim),
                          weights=weights,
                          inputs=dict(character_ids=_character_ids(rng, batch * length).reshape(batch, length, -1)),
                          output_gradient=_normal(rng, batch, length, projection_dim)))
    return calls


CASES = {
    "elmo.highway": highway,
    "elmo.character_cnn": character_cnn,
    "elmo.scalar_mix_even": scalar_mix_even,
    "elmo.scalar_mix_learned": scalar_mix_learned,
    "elmo.language_model_targets": language_model_targets,
    "elmo.character_encoder": character_encoder,
}
