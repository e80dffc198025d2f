"""The optimizer recipe of BERT and its successors, used to pretrain and fine-tune.

AdamW (decoupled weight decay) with no decay on vectors (LayerNorm scales
and offsets, biases: every variable of rank < 2), a learning rate that rises linearly over `warmup_steps` and then falls
linearly to zero at `total_steps`, and gradient clipping by global norm.
"""

import keras
from keras import ops

from reference_impl.layers import register


@register
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak_learning_rate, warmup_steps, total_steps):
        self.peak_learning_rate = peak_learning_rate
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = step / max(1, self.warmup_steps)
        decay = (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps)
        fraction = ops.where(step < self.warmup_steps, warmup, decay)
        return self.peak_learning_rate * ops.clip(fraction, 0.0, 1.0)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate,
                "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


@register
class AdamW(keras.optimizers.AdamW):
    """keras.optimizers.AdamW that first turns sparse gradients dense.

    Under TensorFlow an embedding lookup's gradient is an IndexedSlices in
    which a token id that occurs n times in the batch appears n times. Keras's
    Adam then updates the second moment with the sum of the n squared slices
    instead of the square of their sum, so that row takes a larger step than
    Adam's (e.g. 0.0173 instead of 0.01 for three equal slices at lr 0.01).
    Summing the slices first gives true Adam, identical on every backend.

    Weight decay applies to matrices only: variables of rank < 2 (biases,
    LayerNorm gamma and beta) are never decayed, whatever their names.
    """

    def _use_weight_decay(self, variable):
        return len(variable.shape) >= 2 and super()._use_weight_decay(variable)

    def apply(self, grads, trainable_variables=None):
        # ops.convert_to_tensor leaves an IndexedSlices as it is; arithmetic
        # converts it to a dense tensor, summing repeated rows.
        grads = [g if g is None else ops.add(g, 0.0) for g in grads]
        return super().apply(grads, trainable_variables)


def adamw(learning_rate=1e-3, weight_decay=0.01, warmup_steps=0, total_steps=None,
          clipnorm=1.0, gradient_accumulation_steps=None, epsilon=1e-6):
    """AdamW with warm-up and linear decay (when total_steps is given); epsilon 1e-6 as BERT.

    gradient_accumulation_steps=k averages k micro-batch gradients before each
    update: with losses that are means over examples, k micro-batches of b
    examples give exactly the update of one batch of k*b. Losses averaged over
    tokens (MLM over masked positions, RTD over real tokens) match only when
    every micro-batch has the same token count; otherwise weight each
    micro-batch by its count (the after_bert assignment shows why).
    """
    if total_steps:
        learning_rate = WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
    return AdamW(
        learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
        epsilon=epsilon, gradient_accumulation_steps=gradient_accumulation_steps)
