"""Hugging Face RoBERTa (`model_type` "roberta") -> `RobertaBackbone`.

RoBERTa's positions start after the padding id (<pad> = 1, so at 2): rows 0
and 1 of its position table are never used by a real token, and are sliced
off. Its checkpoints' `pooler` was never trained by RoBERTa's objective and
is not read (`pooled_output` is the <s> state here).
"""

from reference_impl.checkpoints.bert_layout import (
    convert_bert_layer,
    convert_embeddings,
    encoder_arguments,
)

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "roberta"

TENSOR_PREFIX = "roberta"


def position_offset(hf_config):
    return hf_config.get("pad_token_id", 1) + 1


def convert_backbone_config(hf_config):
    return dict(
        max_sequence_length=hf_config["max_position_embeddings"] - position_offset(hf_config),
        **encoder_arguments(hf_config),
    )


def convert_weights(backbone, tensors, hf_config):
    convert_embeddings(tensors, backbone.embeddings, position_offset(hf_config))
    for i, block in enumerate(backbone.transformer_layers):
        convert_bert_layer(tensors, block, f"encoder.layer.{i}")
