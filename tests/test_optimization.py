"""The optimizer recipe: true Adam on embedding rows, warm-up and linear decay, decay of matrices only."""

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


def test_weight_decay_skips_every_variable_of_rank_below_two():
    """Matrices decay; vectors (biases, LayerNorm gamma and beta) never do, whatever their names."""
    from reference_impl.optimization import adamw

    dense = keras.layers.Dense(3, name="gamma_beta_bias_in_the_name")
    dense.build((None, 2))
    norm = keras.layers.LayerNormalization()
    norm.build((None, 3))
    variables = [dense.kernel, dense.bias, norm.gamma, norm.beta]
    for variable in variables:
        variable.assign(np.ones(variable.shape, "float32"))
    optimizer = adamw(learning_rate=0.1, weight_decay=0.5, clipnorm=None)
    optimizer.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    after = [keras.ops.convert_to_numpy(v) for v in variables]
    np.testing.assert_allclose(after[0], 1 - 0.1 * 0.5, atol=1e-6)  # the kernel, named like a bias
    for vector in after[1:]:
        np.testing.assert_array_equal(vector, 1.0)
