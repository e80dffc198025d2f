"""Fine-tuning heads shared by every encoder (BERT, RoBERTa, ALBERT, ELECTRA).

Each head is a small functional model around a backbone: the backbone's inputs
in, a new randomly initialised layer on top, and gradients flowing through the
whole network when it is fine-tuned.
- `SequenceClassifier`: one label per text or text pair, read from the [CLS]
  position (num_classes=1 gives a regression head, e.g. STS-B).
- `TokenClassifier`: one label per token (tagging, e.g. part of speech).
- `SpanExtractor`: start and end logits for extractive question answering.
"""

import keras
from keras import ops

from reference_impl.backbone import WrapsBackbone
from reference_impl.layers import bert_initializer, masked_score, register


class _Head(WrapsBackbone, keras.Model):
    """Shared plumbing: wraps `backbone`; `config` (the head's other arguments) become attributes."""

    def __init__(self, backbone, outputs, config, **kwargs):
        super().__init__(inputs=backbone.input, outputs=outputs, **kwargs)
        self.backbone = backbone
        for name, value in config.items():
            setattr(self, name, value)


@register
class SequenceClassifier(_Head):
    """Logits [B, num_classes] from the sentence vector.

    pooling="pooled" reads the backbone's `pooled_output` (BERT's tanh pooler,
    trained by NSP); pooling="first" reads the raw hidden state at position 0
    ([CLS] / <s>), for backbones whose pooler was never pretrained.
    """

    config_arguments = ("num_classes", "dropout", "pooling")

    def __init__(self, backbone, num_classes, dropout=0.1, pooling="pooled", **kwargs):
        if pooling not in ("pooled", "first"):
            raise ValueError(f"pooling must be 'pooled' or 'first', not {pooling!r}.")
        outputs = backbone(backbone.input)
        x = outputs["pooled_output"] if pooling == "pooled" else outputs["sequence_output"][:, 0, :]
        x = keras.layers.Dropout(dropout, name="classifier_dropout")(x)
        # float32 logits even under mixed precision: the loss needs the range.
        logits = keras.layers.Dense(num_classes, kernel_initializer=bert_initializer(),
                                    dtype="float32", name="logits")(x)
        super().__init__(backbone, logits,
                         dict(num_classes=num_classes, dropout=dropout, pooling=pooling), **kwargs)


@register
class TokenClassifier(_Head):
    """Logits [B, T, num_classes]: a label for every token."""

    config_arguments = ("num_classes", "dropout")

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        x = backbone(backbone.input)["sequence_output"]
        x = keras.layers.Dropout(dropout, name="classifier_dropout")(x)
        logits = keras.layers.Dense(num_classes, kernel_initializer=bert_initializer(),
                                    name="logits")(x)
        super().__init__(backbone, logits, dict(num_classes=num_classes, dropout=dropout), **kwargs)


@register
class SpanMask(keras.layers.Layer):
    """Sets the logits of padding positions so low that no span starts or ends there."""

    def call(self, logits, padding_mask):
        return ops.where(ops.cast(padding_mask, "bool"), logits, masked_score(logits.dtype))


@register
class SpanExtractor(_Head):
    """Start and end logits [B, T] each, for answers that are a span of the text.

    Outputs dict `start_logits`, `end_logits`; train each with sparse
    categorical cross-entropy against the answer's first and last token index.
    """

    def __init__(self, backbone, **kwargs):
        x = backbone(backbone.input)["sequence_output"]
        logits = keras.layers.Dense(2, kernel_initializer=bert_initializer(), name="span_logits")(x)
        span_mask = SpanMask(name="span_mask")
        padding_mask = backbone.input["padding_mask"]
        outputs = {"start_logits": span_mask(logits[..., 0], padding_mask),
                   "end_logits": span_mask(logits[..., 1], padding_mask)}
        super().__init__(backbone, outputs, {}, **kwargs)
