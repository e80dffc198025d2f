"""The optimizer recipe: true Adam on embedding rows, warm-up and linear decay."""

import keras
import numpy as np

import pytest

from reference_impl.optimization import AdamW, WarmupLinearDecay

pytestmark = pytest.mark.backend


def test_repeated_ids_in_a_batch_get_adams_step_not_a_larger_one():
    table = keras.layers.Embedding(4, 3)
    table.build((None,))
    table.embeddings.assign(np.zeros((4, 3), "float32"))
    ids = np.array([0, 0, 0, 1])
    optimizer = AdamW(learning_rate=0.01, weight_decay=0.0)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        with tf.GradientTape() as tape:
            loss = keras.ops.sum(table(ids))
        grads = tape.gradient(loss, [table.embeddings])
        assert isinstance(grads[0], tf.IndexedSlices)  # the case being tested
    else:
        grads = [keras.ops.convert_to_tensor(np.bincount(ids, minlength=4)[:, None]
                                             * np.ones((4, 3), "float32"))]
    optimizer.apply(grads, [table.embeddings])
    moved = -keras.ops.convert_to_numpy(table.embeddings)[:, 0]
    # Adam's first step is lr * sign(gradient) for every row with a gradient.
    np.testing.assert_allclose(moved, [0.01, 0.01, 0.0, 0.0], atol=1e-6)


def test_warmup_then_linear_decay_to_zero():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=110)
    values = [float(keras.ops.convert_to_numpy(schedule(step))) for step in (0, 5, 10, 60, 110, 200)]
    np.testing.assert_allclose(values, [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-9)
