"""Hugging Face T5 (`model_type` "t5") -> `T5Backbone`.

T5ForConditionalGeneration, T5Model and MT5-style checkpoints name their
tensors without a model prefix: `shared.weight` (the token table),
`encoder.block.{i}.layer.{j}...`, `decoder.block.{i}.layer.{j}...`, the
final RMS norms `{encoder,decoder}.final_layer_norm.weight`, and, when
embeddings are untied (T5 v1.1, FLAN-T5), `lm_head.weight`. Sublayer j is 0
self-attention, then (decoder) 1 cross-attention (`EncDecAttention`), then
the feed-forward network (`DenseReluDense`: `wi`, `wo`, or gated `wi_0`,
`wi_1`, `wo`). Only block 0 of each stack holds `relative_attention_bias`.
No tensor has a bias.
"""

from reference_impl.checkpoints.tensors import assign, copy_dense

MODEL_TYPE = "t5"

#: T5 checkpoints have no model prefix: "t5." never matches, names are found as they are.
TENSOR_PREFIX = "t5"

#: `feed_forward_proj` -> (activation, gated). "gated-gelu" is the tanh GELU (gelu_new).
FEED_FORWARD = {"relu": ("relu", False), "gated-relu": ("relu", True),
                "gelu": ("gelu", False), "gated-gelu": ("gelu_approximate", True)}


def convert_backbone_config(hf_config):
    feed_forward = hf_config.get("feed_forward_proj", "relu")
    if feed_forward not in FEED_FORWARD:
        raise ValueError(f"Unsupported feed_forward_proj {feed_forward!r}; supported: {sorted(FEED_FORWARD)}.")
    num_layers = hf_config["num_layers"]
    if hf_config.get("num_decoder_layers", num_layers) != num_layers:
        raise ValueError(
            f"T5Backbone has as many decoder layers as encoder layers; this checkpoint has "
            f"{num_layers} and {hf_config['num_decoder_layers']}.")
    activation, gated = FEED_FORWARD[feed_forward]
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=num_layers,
        num_heads=hf_config["num_heads"],
        hidden_dim=hf_config["d_model"],
        intermediate_dim=hf_config["d_ff"],
        key_value_dim=hf_config["d_kv"],
        dropout=hf_config.get("dropout_rate", 0.1),
        activation=activation,
        use_gated_activation=gated,
        layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-6),
        tie_embedding_weights=hf_config.get("tie_word_embeddings", True),
        relative_attention_buckets=hf_config.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf_config.get("relative_attention_max_distance", 128),
    )


def linear(tensors, dense, name):
    """A bias-free Linear [out, in] -> Dense kernel [in, out]."""
    copy_dense(dense, tensors.get(f"{name}.weight").T, name=name)


def convert_attention(tensors, attention, prefix):
    for dense, name in ((attention.query_dense, "q"), (attention.key_dense, "k"),
                        (attention.value_dense, "v"), (attention.output_dense, "o")):
        linear(tensors, dense, f"{prefix}.{name}")


def convert_weights(backbone, tensors, hf_config):
    assign(backbone.token_embedding.embeddings, tensors.get("shared.weight"), "shared.weight")
    if not backbone.get_config()["tie_embedding_weights"]:
        assign(backbone.token_embedding.reverse_embeddings, tensors.get("lm_head.weight").T,
               "lm_head.weight")
    gated = backbone.get_config()["use_gated_activation"]
    for stack in ("encoder", "decoder"):
        blocks = getattr(backbone, f"{stack}_transformer_layers")
        name = f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        assign(getattr(backbone, f"{stack}_position_bias").embeddings, tensors.get(name), name)
        for i, block in enumerate(blocks):
            prefix = f"{stack}.block.{i}.layer"
            convert_attention(tensors, block.self_attention, f"{prefix}.0.SelfAttention")
            assign(block.self_attention_layer_norm.weight, tensors.get(f"{prefix}.0.layer_norm.weight"))
            feedforward = 1
            if block.is_decoder:
                convert_attention(tensors, block.cross_attention, f"{prefix}.1.EncDecAttention")
                assign(block.cross_attention_layer_norm.weight,
                       tensors.get(f"{prefix}.1.layer_norm.weight"))
                feedforward = 2
            network = f"{prefix}.{feedforward}.DenseReluDense"
            if gated:
                linear(tensors, block.feedforward_intermediate_dense, f"{network}.wi_0")
                linear(tensors, block.feedforward_gate_dense, f"{network}.wi_1")
            else:
                linear(tensors, block.feedforward_intermediate_dense, f"{network}.wi")
            linear(tensors, block.feedforward_output_dense, f"{network}.wo")
            assign(block.feedforward_layer_norm.weight,
                   tensors.get(f"{prefix}.{feedforward}.layer_norm.weight"))
        assign(getattr(backbone, f"{stack}_layer_norm").weight,
               tensors.get(f"{stack}.final_layer_norm.weight"))
