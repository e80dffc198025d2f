"""Knowledge distillation, DistilBERT-style (Sanh et al., 2019): a small student learns from a teacher.

The student has the teacher's width and half its layers, and starts from the
teacher's own weights: the embeddings, the layers above them and every other
Transformer layer (`student_from_teacher`). It then trains on three losses:

- the soft-target loss (`soft_target_loss`, Hinton et al., 2015): the KL
  divergence from the teacher's output distribution to the student's, both
  softened by a temperature T > 1, so that the small probabilities the teacher
  gives to wrong answers (which of them are plausible) carry information too.
  Gradients of softened logits shrink as 1/T^2, hence the loss is scaled by T^2.
- the hard-target loss (`hard_target_loss`): plain cross-entropy with the true
  labels; in DistilBERT's pretraining these are the masked-LM targets (the
  MLM loss), in task-specific distillation the task's labels.
- the hidden-state cosine loss (`hidden_state_cosine_loss`): 1 - cos between
  the student's and the teacher's last hidden states at every real token,
  which aligns the directions of the two representations.

`Distiller` wraps a student and a frozen teacher and trains the student with
the weighted sum, through Keras's `fit`; `classifier_forward` (task-specific
distillation of a fine-tuned `SequenceClassifier`) and `masked_lm_forward`
(DistilBERT's pretraining distillation of a `BertPretrainer`) say how each
model is read. DistilBERT's weights: 5 (soft), 2 (hard), 1 (cosine), T = 2.
"""

import keras
from keras import ops


def weighted_mean(values, weights=None):
    """Mean of `values`, or their weighted mean (weights 0 leave an entry out)."""
    if weights is None:
        return ops.mean(values)
    weights = ops.cast(weights, values.dtype)
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1e-9)


def soft_target_loss(student_logits, teacher_logits, temperature=2.0, weights=None):
    """T^2 * KL(softmax(teacher / T) || softmax(student / T)), averaged over predictions.

    Logits [..., C]; `weights` [...] (e.g. 0 for padded mask slots) says which
    predictions count.
    """
    teacher_log_probs = ops.log_softmax(ops.cast(teacher_logits, "float32") / temperature, axis=-1)
    student_log_probs = ops.log_softmax(ops.cast(student_logits, "float32") / temperature, axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return weighted_mean(kl, weights) * temperature ** 2


def hard_target_loss(student_logits, labels, weights=None):
    """Cross-entropy with the true labels (the MLM loss at masked positions, or a task's labels)."""
    losses = keras.losses.sparse_categorical_crossentropy(
        labels, ops.cast(student_logits, "float32"), from_logits=True)
    return weighted_mean(losses, weights)


def hidden_state_cosine_loss(student_hidden, teacher_hidden, padding_mask=None):
    """Mean of 1 - cos(student, teacher) over the real tokens of [B, T, H] hidden states."""
    student = ops.cast(student_hidden, "float32")
    teacher = ops.cast(teacher_hidden, "float32")
    cosine = ops.sum(student * teacher, axis=-1) / ops.maximum(
        ops.norm(student, axis=-1) * ops.norm(teacher, axis=-1), 1e-9)
    return weighted_mean(1.0 - cosine, padding_mask)


def student_from_teacher(teacher, every=2):
    """A backbone with the teacher's config but only its layers 0, every, 2 * every, ...

    Every weight outside the Transformer layers (embeddings, pooler) is copied
    as it is; student layer i gets teacher layer `every * i`. For backbones
    with a list `transformer_layers` named `transformer_layer_{i}` (BERT,
    RoBERTa, ELECTRA); ALBERT shares its layers and has none to drop.
    """
    blocks = getattr(teacher, "transformer_layers", None)
    if not blocks or isinstance(blocks[0], list):
        raise ValueError(f"{type(teacher).__name__} has no list of Transformer layers to take every "
                         f"other one from; use a BERT, RoBERTa or ELECTRA backbone.")
    chosen = list(range(0, len(blocks), every))
    config = {**teacher.get_config(), "num_layers": len(chosen), "name": f"{teacher.name}_student"}
    student = type(teacher).from_config(config)
    teacher_weights = {w.path.split("/", 1)[1] if w.path.startswith(teacher.name + "/") else w.path: w
                       for w in teacher.weights}
    for student_block, index in zip(student.transformer_layers, chosen):
        student_block.set_weights(blocks[index].get_weights())
    block_weights = {id(w) for block in student.transformer_layers for w in block.weights}
    for weight in student.weights:
        if id(weight) not in block_weights:
            path = weight.path.split("/", 1)[1] if weight.path.startswith(student.name + "/") else weight.path
            # A copy: under JAX the two variables would otherwise share one buffer.
            weight.assign(ops.convert_to_numpy(teacher_weights[path]))
    return student


def classifier_forward(classifier, x, training=False):
    """(logits [B, C], last hidden states [B, T, H], padding mask) of a `SequenceClassifier`.

    One pass through the backbone, then the head's own dropout and logits
    layers, so the hidden states the head read come out too.
    """
    outputs = classifier.backbone({name: x[name] for name in classifier.backbone.input},
                                  training=training)
    pooled = (outputs["pooled_output"] if classifier.pooling == "pooled"
              else outputs["sequence_output"][:, 0, :])
    pooled = classifier.get_layer("classifier_dropout")(pooled, training=training)
    return classifier.get_layer("logits")(pooled), outputs["sequence_output"], x["padding_mask"]


def masked_lm_forward(pretrainer, x, training=False):
    """(masked-LM logits [B, P, V] at `mask_positions`, last hidden states, padding mask)."""
    outputs = pretrainer.backbone({name: x[name] for name in pretrainer.backbone.input},
                                  training=training)
    logits = pretrainer.mlm_head(outputs["sequence_output"], x["mask_positions"])
    return logits, outputs["sequence_output"], x["padding_mask"]


class Distiller(keras.Model):
    """Trains `student` on soft targets from a frozen `teacher`, hard targets and hidden states.

    `forward(model, x, training)` -> (logits, hidden states, padding mask)
    reads either model (`classifier_forward`, `masked_lm_forward`); the two
    must have the same hidden width. `fit(x, labels, sample_weight=...)`:
    `labels` are the hard targets, `sample_weight` which predictions count
    (the masked-LM weights; None for one label per example). Calling the
    distiller gives the student's logits. The three losses are reported
    as `soft_loss`, `hard_loss` and `cosine_loss`.
    """

    def __init__(self, student, teacher, forward=classifier_forward, temperature=2.0,
                 soft_weight=5.0, hard_weight=2.0, cosine_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.forward = forward
        self.temperature = temperature
        self.soft_weight, self.hard_weight, self.cosine_weight = soft_weight, hard_weight, cosine_weight
        self.soft_loss_tracker = keras.metrics.Mean(name="soft_loss")
        self.hard_loss_tracker = keras.metrics.Mean(name="hard_loss")
        self.cosine_loss_tracker = keras.metrics.Mean(name="cosine_loss")

    def call(self, x, training=False):
        logits, hidden, _ = self.forward(self.student, x, training=training)
        return {"logits": logits, "hidden_states": hidden}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher_logits, teacher_hidden, padding_mask = self.forward(self.teacher, x, training=False)
        teacher_logits, teacher_hidden = ops.stop_gradient(teacher_logits), ops.stop_gradient(teacher_hidden)
        soft = soft_target_loss(y_pred["logits"], teacher_logits, self.temperature, sample_weight)
        hard = hard_target_loss(y_pred["logits"], y, sample_weight)
        cosine = hidden_state_cosine_loss(y_pred["hidden_states"], teacher_hidden, padding_mask)
        self.soft_loss_tracker.update_state(soft)
        self.hard_loss_tracker.update_state(hard)
        self.cosine_loss_tracker.update_state(cosine)
        return self.soft_weight * soft + self.hard_weight * hard + self.cosine_weight * cosine
