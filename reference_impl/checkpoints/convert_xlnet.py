"""Hugging Face XLNet (`model_type` "xlnet") -> `XLNetBackbone`.

XLNet stores its attention projections as raw [H, n, d] parameters
(`rel_attn.q`, `k`, `v`, `o`, and `r` for the relative encodings), the
layout of our EinsumDense kernels: no reshape, no transpose. `r_w_bias`
is the content bias u, `r_r_bias` the position bias v, `r_s_bias` and
`seg_embed` the segment term. `mask_emb` starts the query stream. Only the
bidirectional attention of the released models converts (attn_type "bi",
untie_r, no clamp_len), and only `ff_activation` "gelu" (exact).
"""

from reference_impl.checkpoints.tensors import assign

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "xlnet"

#: The prefix XLNetLMHeadModel puts before every tensor name.
TENSOR_PREFIX = "transformer"


def convert_backbone_config(hf_config):
    unsupported = {key: hf_config.get(key) for key, supported in
                   (("attn_type", "bi"), ("untie_r", True), ("ff_activation", "gelu"), ("bi_data", False))
                   if hf_config.get(key, supported) != supported}
    if hf_config.get("clamp_len", -1) > 0:
        unsupported["clamp_len"] = hf_config["clamp_len"]
    if unsupported:
        raise ValueError(f"XLNetBackbone cannot reproduce this checkpoint's {unsupported}; it "
                         f"implements attn_type 'bi', untie_r, exact GELU and no clamp_len.")
    if hf_config.get("layer_norm_eps", 1e-12) != 1e-12:
        raise ValueError(f"XLNetBackbone uses layer_norm_eps 1e-12, not {hf_config['layer_norm_eps']}.")
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=hf_config["n_layer"],
        num_heads=hf_config["n_head"],
        hidden_dim=hf_config["d_model"],
        intermediate_dim=hf_config["d_inner"],
        dropout=hf_config.get("dropout", 0.1),
        kernel_initializer_range=hf_config.get("initializer_range", 0.02),
    )


def convert_weights(backbone, tensors, hf_config):
    assign(backbone.embeddings.embeddings, tensors.get("word_embedding.weight"), "word_embedding.weight")
    assign(backbone.query_stream_start.mask_emb, tensors.get("mask_emb"), "mask_emb")
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"layer.{i}."
        attention = block.relative_attention
        for dense, name in ((attention.query_dense, "q"), (attention.key_dense, "k"),
                            (attention.value_dense, "v"), (attention.encoding_dense, "r"),
                            (attention.output_dense, "o")):
            assign(dense.kernel, tensors.get(prefix + "rel_attn." + name), prefix + "rel_attn." + name)
        for weight, name in ((attention.content_attention_bias, "r_w_bias"),
                             (attention.positional_attention_bias, "r_r_bias"),
                             (attention.segment_attention_bias, "r_s_bias"),
                             (attention.segment_encoding, "seg_embed")):
            assign(weight, tensors.get(prefix + "rel_attn." + name), prefix + "rel_attn." + name)
        tensors.layer_norm(block.attention_layer_norm, prefix + "rel_attn.layer_norm")
        tensors.dense(block.feedforward_intermediate_dense, prefix + "ff.layer_1")
        tensors.dense(block.feedforward_output_dense, prefix + "ff.layer_2")
        tensors.layer_norm(block.feedforward_layer_norm, prefix + "ff.layer_norm")
