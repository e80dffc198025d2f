"""Hugging Face ALBERT (`model_type` "albert") -> `AlbertBackbone`, group by group."""

from reference_impl.checkpoints.bert_layout import convert_embeddings, encoder_arguments

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "albert"

TENSOR_PREFIX = "albert"


def convert_backbone_config(hf_config):
    return dict(
        embedding_dim=hf_config["embedding_size"],
        num_groups=hf_config.get("num_hidden_groups", 1),
        num_inner_repetitions=hf_config.get("inner_group_num", 1),
        max_sequence_length=hf_config["max_position_embeddings"],
        num_segments=hf_config.get("type_vocab_size", 2),
        **encoder_arguments(hf_config),
    )


def convert_albert_layer(tensors, block, prefix):
    """`encoder.albert_layer_groups.{g}.albert_layers.{i}` -> a `TransformerBlock`."""
    attention = block.self_attention
    for dense, name in ((attention.query_dense, "query"), (attention.key_dense, "key"),
                        (attention.value_dense, "value"), (attention.output_dense, "dense")):
        tensors.dense(dense, f"{prefix}.attention.{name}")
    tensors.layer_norm(block.self_attention_layer_norm, f"{prefix}.attention.LayerNorm")
    tensors.dense(block.feedforward_intermediate_dense, f"{prefix}.ffn")
    tensors.dense(block.feedforward_output_dense, f"{prefix}.ffn_output")
    tensors.layer_norm(block.feedforward_layer_norm, f"{prefix}.full_layer_layer_norm")


def convert_weights(backbone, tensors, hf_config):
    convert_embeddings(tensors, backbone.embeddings)
    tensors.dense(backbone.embeddings_projection, "encoder.embedding_hidden_mapping_in")
    for g, group in enumerate(backbone.transformer_layers):
        for i, block in enumerate(group):
            convert_albert_layer(tensors, block, f"encoder.albert_layer_groups.{g}.albert_layers.{i}")
    tensors.dense(backbone.pooled_dense, "pooler")
