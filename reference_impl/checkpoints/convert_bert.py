"""Hugging Face BERT (`model_type` "bert") -> `BertBackbone`."""

from reference_impl.checkpoints.bert_layout import (
    convert_bert_layer,
    convert_embeddings,
    encoder_arguments,
)

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "bert"

#: The prefix BertForMaskedLM and the task models put before every tensor name.
TENSOR_PREFIX = "bert"


def convert_backbone_config(hf_config):
    return dict(
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )


def convert_weights(backbone, tensors, hf_config):
    """A checkpoint saved without the pooler (BertForMaskedLM) leaves
    `pooled_dense` at its initialisation."""
    convert_embeddings(tensors, backbone.embeddings)
    for i, block in enumerate(backbone.transformer_layers):
        convert_bert_layer(tensors, block, f"encoder.layer.{i}")
    if tensors.has("pooler.dense.weight"):  # masked-LM-only checkpoints have no pooler
        tensors.dense(backbone.pooled_dense, "pooler.dense")
