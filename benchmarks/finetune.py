"""The fine-tuning recipe: one documented procedure for every submission.

Recipe (BERT's, Devlin et al. 2019, Appendix A.3):
- head: as the family registry says (`reference_impl.families`, `head`):
  "first_token": dropout then a dense layer on `pooled_output` (BERT, ALBERT:
  their pooler was pretrained by NSP/SOP) or on the raw first position
  (RoBERTa, ELECTRA: no pretrained pooler; also a BERT whose metadata says
  `"pooling": "first"`, as for all-MiniLM-L6-v2, whose pooler was never
  trained); "last_token": on the last
  non-padding position (GPT-style decoders); "frozen_features": ELMo's frozen
  biLM, a trained scalar mix of its layers and a small BiLSTM. One output and
  mean squared error for STS-B, class logits and cross-entropy otherwise;
  "text_to_text" (T5): no new layer: the decoder learns to write the label
  word (STS-B: the score as a number), with the cross-entropy of its
  pretraining over the target's tokens, and answers by greedy decoding
  (`reference_impl.text_to_text`);
- AdamW (beta_1=0.9, beta_2=0.999, epsilon=1e-6), weight decay 0.01 on all
  weights except biases and LayerNorm gamma/beta;
- learning rate rising linearly from 0 over the first `warmup_ratio` of the
  steps, then falling linearly to 0; gradients clipped to global norm
  `clipnorm`;
- `epochs` passes over at most `max_train_examples` examples in batches of
  `batch_size`, shuffled by a generator seeded with the run's seed.

`keras.utils.set_random_seed(seed)` fixes initialisation and dropout, so a
run on the CPU gives the same predictions every time. On a GPU the recipe
uses bf16 mixed precision and XLA compilation.
"""

import dataclasses
import math
import time

import keras
import numpy as np

from benchmarks.config import FineTuneConfig  # noqa: F401 - the recipe's settings, used as finetune.FineTuneConfig
from reference_impl.families import FAMILIES
from reference_impl.heads import SequenceClassifier
from reference_impl.optimization import adamw
from reference_impl.text_to_text import greedy_answers


def make_optimizer(config, total_steps):
    """The kit's AdamW recipe (reference_impl.optimization): warm-up, linear decay, clipping."""
    return adamw(config.learning_rate, weight_decay=config.weight_decay,
                 warmup_steps=int(config.warmup_ratio * total_steps), total_steps=total_steps,
                 clipnorm=config.clipnorm)


def build_classifier(encoder, num_outputs, dropout, family=None, pooling=None):
    """The task head the family's record names (num_outputs=1: regression for STS-B).

    `family`: a key of `FAMILIES`; None for the older format's BERT encoders ([CLS] pooler).
    `pooling`: the submission's own choice for a first-token head ("first" or "pooled"); None:
    the pooler where the family pretrains one (NSP, SOP), the raw first position otherwise.
    """
    if family is None:
        return SequenceClassifier(encoder, num_outputs, dropout=dropout)
    record = FAMILIES[family]
    if record.head == "first_token":
        pooling = pooling or ("first" if record.sentence_objective == "none" else "pooled")
        return SequenceClassifier(encoder, num_outputs, dropout=dropout, pooling=pooling)
    if record.head == "last_token":
        return record.classifier(encoder, num_outputs, dropout=dropout)
    if record.head == "frozen_features":
        return record.classifier(encoder, num_outputs)
    if record.head == "text_to_text":  # the sequence-to-sequence model: it writes its answers
        return record.classifier(encoder)
    raise ValueError(f"The {family} family's head {record.head!r} has no task head in the harness yet.")


def model_features(model, arrays):
    """The arrays the model has inputs for (`segment_ids` only where the family reads them)."""
    return {name: arrays[name] for name in model.input}


def token_count(arrays):
    """Real tokens in the arrays (words for ELMo's characters; inputs and targets text to text)."""
    if "padding_mask" in arrays:
        return int(arrays["padding_mask"].sum())
    if "encoder_padding_mask" in arrays:
        return int(arrays["encoder_padding_mask"].sum() + arrays["target_mask"].sum())
    return int(arrays["character_ids"].any(axis=-1).sum())


def steps_per_epoch(train_arrays, config):
    return math.ceil(len(train_arrays["labels"]) / config.batch_size)


@dataclasses.dataclass
class FineTuneResult:
    model: keras.Model
    train_seconds: float
    train_sequences_per_second: float
    train_tokens_per_second: float


def fine_tune(encoder, train_arrays, num_classes, config, seed, callbacks=(), family=None, pooling=None):
    """Fine-tune `encoder` (modified in place) on `train_arrays` with `family`'s head; return the classifier."""
    keras.utils.set_random_seed(seed)
    model = build_classifier(encoder, num_classes, config.dropout, family, pooling)
    optimizer = make_optimizer(config, steps_per_epoch(train_arrays, config) * config.epochs)
    if family is not None and FAMILIES[family].head == "text_to_text":  # its pretraining loss, over target tokens
        FAMILIES[family].compile_pretrainer(model, optimizer=optimizer, jit_compile=config.jit_compile)
        targets, weights = train_arrays["target_ids"], train_arrays["target_mask"]
    else:
        loss = (keras.losses.MeanSquaredError() if num_classes == 1
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.compile(optimizer=optimizer, loss=loss, jit_compile=config.jit_compile)
        targets, weights = train_arrays["labels"], None
    features = model_features(model, train_arrays)
    order_generator = np.random.default_rng(seed)
    start = time.perf_counter()
    # One fit() per epoch over a seeded permutation: the example order is
    # the same on every backend (Keras' own shuffle is backend-specific).
    for _ in range(config.epochs):
        order = order_generator.permutation(len(train_arrays["labels"]))
        model.fit(
            {k: v[order] for k, v in features.items()},
            targets[order],
            sample_weight=None if weights is None else weights[order],
            batch_size=config.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=list(callbacks),
        )
    seconds = time.perf_counter() - start
    sequences = len(train_arrays["labels"]) * config.epochs
    tokens = token_count(train_arrays) * config.epochs
    return FineTuneResult(model, seconds, sequences / seconds, tokens / seconds)


def predict(model, arrays, num_classes, decoding=None, batch_size=128):
    """Class ids (argmax of the logits) or regression scores for every example; with `decoding` (a
    text-to-text model: `encoding.TextToTextTokenizer.decoding`), its greedy answers' token ids.

    Direct calls rather than `model.predict`: no predict graph to trace for
    each freshly fine-tuned model, which dominates on small evaluation sets.
    """
    if decoding is not None:
        return greedy_answers(model, arrays["encoder_token_ids"], arrays["encoder_padding_mask"],
                              batch_size=batch_size, **decoding)
    features = model_features(model, arrays)
    count = len(next(iter(features.values())))
    outputs = np.concatenate(
        [
            keras.ops.convert_to_numpy(model({k: v[start : start + batch_size] for k, v in features.items()}, training=False))
            for start in range(0, count, batch_size)
        ]
    ).astype("float64")
    return outputs[:, 0] if num_classes == 1 else outputs.argmax(axis=-1)


class ProgressCallback(keras.callbacks.Callback):
    """Advances a rich progress task by one step per training batch, showing the loss."""

    def __init__(self, progress, task_id):
        super().__init__()
        self.progress = progress
        self.task_id = task_id

    def on_train_batch_end(self, batch, logs=None):
        loss = f" (loss {float(logs['loss']):.4f})" if logs and "loss" in logs else ""
        self.progress.update(self.task_id, advance=1, description=f"  steps{loss}")
