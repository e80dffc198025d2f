"""Transformer-XL: relative positions, the stop-gradient memory, causality, memory use."""

import keras
import numpy as np
import pytest
from keras import ops

from reference_impl.transformer_xl import (
    TransformerXLBackbone,
    TransformerXLCausalLM,
    relative_position_encoding,
    relative_shift,
    segment_batches,
)

pytestmark = pytest.mark.backend

VOCABULARY_SIZE = 61
SEGMENT = 6


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def gradients(function, *arguments):
    """d function(*arguments) / d each argument (a list of tensors), as NumPy; zeros where unconnected."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        arguments = [[tf.convert_to_tensor(t) for t in group] for group in arguments]
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            value = function(*arguments)
        grads = tape.gradient(value, arguments, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    elif backend == "jax":
        import jax

        grads = jax.jit(jax.grad(function, argnums=tuple(range(len(arguments)))))(*arguments)
    else:
        pytest.skip(f"no gradient helper for the {backend} backend")
    return [[numpy(g) for g in group] for group in grads]


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    return TransformerXLBackbone(vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2,
                                 hidden_dim=16, intermediate_dim=32, memory_length=2 * SEGMENT,
                                 dropout=0.0)


def segments(count, seed=0, batch=2):
    rng = np.random.default_rng(seed)
    return [rng.integers(1, VOCABULARY_SIZE, (batch, SEGMENT)).astype("int32") for _ in range(count)]


def test_relative_shift_gives_each_query_key_pair_its_distance():
    memory_length, query_length = 3, 4
    key_length = memory_length + query_length
    # Row p of the encoding stands for distance K - p; score each distance by its value.
    distances = key_length - np.arange(key_length + query_length, dtype="float32")
    scores = np.broadcast_to(distances, (1, 1, query_length, key_length + query_length))
    shifted = numpy(relative_shift(ops.convert_to_tensor(scores), key_length))[0, 0]
    query_positions = memory_length + np.arange(query_length)[:, None]
    np.testing.assert_array_equal(shifted, query_positions - np.arange(key_length)[None, :])
    encoding = numpy(relative_position_encoding(query_length, key_length, hidden_dim=8))
    assert encoding.shape == (key_length + query_length, 8)
    np.testing.assert_allclose(encoding[key_length, 4:], 1.0)  # distance 0: cos(0) = 1


def test_no_gradient_reaches_the_memory(backbone):
    """The next segment's loss reads the memory but never trains what made it."""
    first, second = segments(2)
    embedded_first = backbone.embeddings(first)
    embedded_second = backbone.embeddings(second)
    _, first_states = backbone.run_layers(embedded_first, [None, None])
    first_states = [numpy(s) for s in first_states]

    def loss(current, memory):
        hidden, _ = backbone.run_layers(current[0], memory)
        logits = backbone.token_embedding(hidden, reverse=True)
        return ops.sum(keras.losses.sparse_categorical_crossentropy(second, logits, from_logits=True))

    def loss_through_next_memory(current, states):
        return loss(current, [backbone.next_memory(None, s) for s in states])

    current_grads, state_grads = gradients(loss_through_next_memory, [numpy(embedded_second)], first_states)
    assert all(np.all(g == 0) for g in state_grads)
    assert np.abs(current_grads[0]).max() > 1e-6
    # The zero comes from stop_gradient, not from an unread memory: fed directly, it gets a gradient.
    _, memory_grads = gradients(loss, [numpy(embedded_second)], first_states)
    assert all(np.abs(g).max() > 1e-7 for g in memory_grads)


def test_memory_continues_the_text_exactly(backbone):
    """Segment 2 read after segment 1's memory = the same tokens read as one sequence (relative positions)."""
    first, second = segments(2, seed=1)
    _, memory = backbone.call_with_memory(first)
    with_memory, next_memory = backbone.call_with_memory(second, memory)
    whole = np.concatenate([first, second], axis=1)
    expected = backbone({"token_ids": whole, "padding_mask": np.ones_like(whole)})[:, SEGMENT:]
    np.testing.assert_allclose(numpy(with_memory), numpy(expected), atol=1e-5)
    assert [tuple(m.shape) for m in next_memory] == [(2, 2 * SEGMENT, 16)] * 2
    # Memory is used: without it (or with another text's) the outputs change.
    alone, _ = backbone.call_with_memory(second)
    _, other_memory = backbone.call_with_memory(segments(1, seed=9)[0])
    with_other, _ = backbone.call_with_memory(second, other_memory)
    assert np.abs(numpy(alone) - numpy(with_memory)).max() > 1e-3
    assert np.abs(numpy(with_other) - numpy(with_memory)).max() > 1e-3


def test_memory_keeps_the_last_memory_length_states(backbone):
    parts = segments(3, seed=2)
    memory = None
    for part in parts:
        _, memory = backbone.call_with_memory(part, memory)
    _, states = backbone.run_layers(backbone.embeddings(np.concatenate(parts, axis=1)), [None, None])
    for kept, state in zip(memory, states):
        np.testing.assert_allclose(numpy(kept), numpy(state)[:, -2 * SEGMENT:], atol=1e-5)


@pytest.mark.parametrize("position", [0, 2, SEGMENT - 2])
def test_a_position_never_sees_later_tokens_of_its_segment(backbone, position):
    first, second = segments(2, seed=3)
    _, memory = backbone.call_with_memory(first)
    changed = second.copy()
    changed[:, position + 1:] = (changed[:, position + 1:] + 7) % VOCABULARY_SIZE
    before, _ = backbone.call_with_memory(second, memory)
    after, _ = backbone.call_with_memory(changed, memory)
    np.testing.assert_allclose(numpy(after)[:, :position + 1], numpy(before)[:, :position + 1], atol=1e-6)
    assert np.abs(numpy(after)[:, position + 1] - numpy(before)[:, position + 1]).max() > 1e-4


def test_causal_lm_carries_the_memory_across_segments(backbone):
    parts = segments(2, seed=4)
    whole = np.concatenate(parts, axis=1)
    logits = TransformerXLCausalLM(backbone, segment_length=SEGMENT)({"token_ids": whole})
    hidden = backbone({"token_ids": whole, "padding_mask": np.ones_like(whole)})
    np.testing.assert_allclose(numpy(logits), numpy(backbone.token_embedding(hidden, reverse=True)),
                               atol=1e-4)
    with pytest.raises(ValueError, match="not a multiple of segment_length 6"):
        TransformerXLCausalLM(backbone, segment_length=SEGMENT)({"token_ids": whole[:, :-1]})


def test_segment_batches_hold_consecutive_text_and_next_tokens():
    text = np.arange(100)
    x, y = segment_batches(text, segment_length=5, segments_per_example=3)
    assert x["token_ids"].shape == (6, 15)
    np.testing.assert_array_equal(x["token_ids"][1], np.arange(15, 30))
    np.testing.assert_array_equal(y, x["token_ids"] + 1)
