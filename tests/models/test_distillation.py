"""Distillation: the three losses against hand computations, layer selection, training."""

import keras
import numpy as np
import pytest

from reference_impl.albert import AlbertBackbone
from reference_impl.bert import BertBackbone, BertPretrainer
from reference_impl.distillation import (
    Distiller,
    hard_target_loss,
    hidden_state_cosine_loss,
    masked_lm_forward,
    soft_target_loss,
    student_from_teacher,
)
from reference_impl.heads import SequenceClassifier
from reference_impl.optimization import adamw
from tests.models.helpers import random_encoder_inputs

pytestmark = pytest.mark.backend

TINY = dict(vocabulary_size=97, num_layers=4, num_heads=2, hidden_dim=16, intermediate_dim=32,
            max_sequence_length=24)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_soft_target_loss_is_t_squared_times_kl_at_temperature():
    student = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], "float32")
    teacher = np.array([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], "float32")
    for temperature in (1.0, 2.0, 4.0):
        p, q = softmax(teacher / temperature), softmax(student / temperature)
        kl = (p * np.log(p / q)).sum(-1)
        expected = kl.mean() * temperature ** 2
        got = float(soft_target_loss(student, teacher, temperature))
        np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Weights leave predictions out (padded masked-LM slots): only row 0 counts.
    np.testing.assert_allclose(float(soft_target_loss(student, teacher, 2.0, np.array([1.0, 0.0]))),
                               (softmax(teacher / 2) * np.log(softmax(teacher / 2) / softmax(student / 2)))
                               .sum(-1)[0] * 4, rtol=1e-5)
    # A student that matches the teacher has no soft loss.
    assert abs(float(soft_target_loss(teacher, teacher, 2.0))) < 1e-6


def test_hard_target_loss_is_cross_entropy_with_the_labels():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 2.0, 3.0]], "float32")
    labels = np.array([0, 2, 1])
    cross_entropy = -np.log(softmax(logits)[np.arange(3), labels])
    np.testing.assert_allclose(float(hard_target_loss(logits, labels)), cross_entropy.mean(), rtol=1e-5)
    weights = np.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(float(hard_target_loss(logits, labels, weights)),
                               cross_entropy[:2].mean(), rtol=1e-5)


def test_hidden_state_cosine_loss_counts_real_tokens_only():
    student = np.array([[[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [5.0, 5.0]]], "float32")
    teacher = np.array([[[3.0, 0.0], [2.0, 0.0], [-1.0, -1.0], [-1.0, 2.0]]], "float32")
    # 1 - cos: same direction 0, orthogonal 1, opposite 2; the last token is padding.
    mask = np.array([[1, 1, 1, 0]])
    np.testing.assert_allclose(float(hidden_state_cosine_loss(student, teacher, mask)), 1.0, rtol=1e-6)
    cos_last = 5.0 / (np.sqrt(50) * np.sqrt(5))
    np.testing.assert_allclose(float(hidden_state_cosine_loss(student, teacher)),
                               (0 + 1 + 2 + 1 - cos_last) / 4, rtol=1e-6)


def test_student_takes_every_other_teacher_layer_and_everything_else():
    keras.utils.set_random_seed(0)
    teacher = BertBackbone(**TINY)
    student = student_from_teacher(teacher)
    assert student.get_config()["num_layers"] == 2 and type(student) is BertBackbone
    for student_block, teacher_index in zip(student.transformer_layers, (0, 2), strict=True):
        for ours, theirs in zip(student_block.weights, teacher.transformer_layers[teacher_index].weights,
                                strict=True):
            np.testing.assert_array_equal(numpy(ours), numpy(theirs))
    for layer in ("embeddings", "pooled_dense"):
        for ours, theirs in zip(getattr(student, layer).weights, getattr(teacher, layer).weights,
                                strict=True):
            np.testing.assert_array_equal(numpy(ours), numpy(theirs))
    # The check has teeth: teacher layers 0 and 1 differ.
    assert np.abs(numpy(teacher.transformer_layers[1].weights[0])
                  - numpy(teacher.transformer_layers[0].weights[0])).max() > 0
    assert student_from_teacher(teacher, every=3).get_config()["num_layers"] == 2  # layers 0, 3
    with pytest.raises(ValueError, match="no list of Transformer layers.*BERT"):
        student_from_teacher(AlbertBackbone.from_name("tiny", vocabulary_size=97))


@pytest.mark.training
def test_task_distillation_trains_the_student_towards_the_teacher():
    keras.utils.set_random_seed(0)
    teacher = SequenceClassifier(BertBackbone(**TINY, dropout=0.0), num_classes=2, dropout=0.0)
    student = SequenceClassifier(student_from_teacher(teacher.backbone), num_classes=2, dropout=0.0)
    x = random_encoder_inputs(97, batch=32, length=12, seed=3)
    labels = (x["token_ids"][:, 1] % 2).astype("int32")
    # A fine-tuned teacher: confident, and different from the student's fresh head.
    teacher.compile(optimizer=adamw(3e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x, labels, batch_size=8, epochs=8, verbose=0)
    teacher_before = [numpy(w).copy() for w in teacher.weights]
    distiller = Distiller(student, teacher, temperature=2.0)
    distiller.compile(optimizer=adamw(3e-3))
    history = distiller.fit(x, labels, batch_size=8, epochs=4, verbose=0).history
    assert set(history) >= {"loss", "soft_loss", "hard_loss", "cosine_loss"}
    assert history["soft_loss"][-1] < 0.8 * history["soft_loss"][0], history["soft_loss"]
    assert history["loss"][-1] < history["loss"][0]
    for before, after in zip(teacher_before, teacher.weights, strict=True):
        np.testing.assert_array_equal(before, numpy(after))  # the teacher stays frozen
    # The distiller's output is the student's.
    np.testing.assert_allclose(numpy(distiller(x)["logits"]), numpy(student(x)), atol=1e-5)


def test_masked_lm_distillation_runs_on_masked_positions():
    keras.utils.set_random_seed(0)
    teacher = BertPretrainer(BertBackbone(**TINY, dropout=0.0))
    student = BertPretrainer(student_from_teacher(teacher.backbone))
    x = random_encoder_inputs(97, batch=8, length=12, seed=4)
    x["mask_positions"] = np.tile(np.array([1, 3, 5], "int32"), (8, 1))
    x.pop("segment_ids")
    x["segment_ids"] = np.zeros_like(x["token_ids"])
    mask_ids = x["token_ids"][:, [1, 3, 5]]
    weights = np.ones((8, 3), "float32")
    weights[:, 2] = 0  # a padded prediction slot
    distiller = Distiller(student, teacher, forward=masked_lm_forward)
    distiller.compile(optimizer=adamw(1e-3))
    history = distiller.fit(x, mask_ids, sample_weight=weights, batch_size=8, epochs=3, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
