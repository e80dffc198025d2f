"""Hugging Face ELECTRA (`model_type` "electra") -> `ElectraBackbone`.

Discriminator or generator encoder. ELECTRA has no pooler, so `pooled_dense`
keeps its initialisation (fine-tuning trains it). keras-hub 0.32.0 imports
no ELECTRA checkpoint from Hugging Face; this does.
"""

from reference_impl.checkpoints.bert_layout import (
    convert_bert_layer,
    convert_embeddings,
    encoder_arguments,
)

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "electra"

TENSOR_PREFIX = "electra"


def convert_backbone_config(hf_config):
    return dict(
        embedding_dim=hf_config["embedding_size"],
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )


def convert_weights(backbone, tensors, hf_config):
    convert_embeddings(tensors, backbone.embeddings)
    if backbone.embeddings_projection is not None:
        tensors.dense(backbone.embeddings_projection, "embeddings_project")
    for i, block in enumerate(backbone.transformer_layers):
        convert_bert_layer(tensors, block, f"encoder.layer.{i}")
