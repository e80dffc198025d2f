"""What the BERT-style checkpoints (BERT, RoBERTa, ALBERT, ELECTRA) share: config
entries, the embedding tables and the `encoder.layer.{i}` blocks."""

from reference_impl.checkpoints.tensors import assign

#: Hugging Face `hidden_act` -> our activation names. "gelu" is the exact erf
#: GELU; "gelu_new" (ALBERT) is the tanh approximation keras-hub uses.
HUGGING_FACE_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}


def encoder_arguments(hf_config):
    """The `config.json` entries every encoder shares -> our argument names."""
    if hf_config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"Only absolute position embeddings are supported, not "
            f"{hf_config['position_embedding_type']!r}."
        )
    activation = hf_config.get("hidden_act", "gelu")
    if activation not in HUGGING_FACE_ACTIVATIONS:
        raise ValueError(
            f"Unsupported hidden_act {activation!r}; supported: {sorted(HUGGING_FACE_ACTIVATIONS)}."
        )
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=hf_config["num_hidden_layers"],
        num_heads=hf_config["num_attention_heads"],
        hidden_dim=hf_config["hidden_size"],
        intermediate_dim=hf_config["intermediate_size"],
        dropout=hf_config.get("hidden_dropout_prob", 0.1),
        activation=HUGGING_FACE_ACTIVATIONS[activation],
        layer_norm_epsilon=hf_config.get("layer_norm_eps", 1e-12),
    )


def convert_embeddings(tensors, ours, position_offset=0):
    """Word, position (rows from `position_offset` on) and token-type tables + LayerNorm.

    A model without segment embeddings (RoBERTa) still has a one-row
    token-type table in Hugging Face, added to every token; it is folded
    into the position table, which every token also gets exactly once.
    """
    assign(ours.token_embedding.embeddings, tensors.get("embeddings.word_embeddings.weight"),
           "embeddings.word_embeddings.weight")
    positions = tensors.get("embeddings.position_embeddings.weight")
    positions = positions[position_offset:position_offset + ours.max_sequence_length]
    token_types = tensors.get("embeddings.token_type_embeddings.weight")
    if ours.segment_embedding is None:
        if token_types.shape[0] != 1:
            raise ValueError(f"Expected one token type, found {token_types.shape[0]}.")
        positions = positions + token_types[0]
    else:
        assign(ours.segment_embedding.embeddings, token_types,
               "embeddings.token_type_embeddings.weight")
    assign(ours.position_embedding.embeddings, positions, "embeddings.position_embeddings.weight")
    tensors.layer_norm(ours.layer_norm, "embeddings.LayerNorm")


def convert_bert_layer(tensors, block, prefix):
    """`encoder.layer.{i}` of BERT, RoBERTa and ELECTRA -> a `TransformerBlock`."""
    attention = block.self_attention
    tensors.dense(attention.query_dense, f"{prefix}.attention.self.query")
    tensors.dense(attention.key_dense, f"{prefix}.attention.self.key")
    tensors.dense(attention.value_dense, f"{prefix}.attention.self.value")
    tensors.dense(attention.output_dense, f"{prefix}.attention.output.dense")
    tensors.layer_norm(block.self_attention_layer_norm, f"{prefix}.attention.output.LayerNorm")
    tensors.dense(block.feedforward_intermediate_dense, f"{prefix}.intermediate.dense")
    tensors.dense(block.feedforward_output_dense, f"{prefix}.output.dense")
    tensors.layer_norm(block.feedforward_layer_norm, f"{prefix}.output.LayerNorm")
