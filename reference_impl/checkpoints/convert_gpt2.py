"""Hugging Face GPT-2 (`model_type` "gpt2") -> `GPTBackbone`.

GPT-2 stores its projections as `Conv1D` with kernels [in, out] (Keras's
Dense layout, no transpose) and the query, key and value projections fused
in `attn.c_attn` ([H, 3H], in that order), which is split in three. The LM
head is the token table, so `lm_head.weight` is not read.
"""

import numpy as np

from reference_impl.checkpoints.tensors import assign, copy_dense

#: `model_type` in the config.json of the checkpoints this module converts.
MODEL_TYPE = "gpt2"

#: The prefix GPT2LMHeadModel puts before every tensor name.
TENSOR_PREFIX = "transformer"


def convert_backbone_config(hf_config):
    activation = hf_config.get("activation_function", "gelu_new")
    if activation not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(
            f"GPTBackbone uses the tanh-approximated GELU; this checkpoint's "
            f"activation_function is {activation!r}, which it cannot reproduce."
        )
    hidden_dim = hf_config["n_embd"]
    return dict(
        vocabulary_size=hf_config["vocab_size"],
        num_layers=hf_config["n_layer"],
        num_heads=hf_config["n_head"],
        hidden_dim=hidden_dim,
        intermediate_dim=hf_config.get("n_inner") or 4 * hidden_dim,
        dropout=hf_config.get("resid_pdrop", 0.1),
        max_sequence_length=hf_config["n_positions"],
        layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-5),
    )


def convert_weights(backbone, tensors, hf_config):
    embeddings = backbone.embeddings
    assign(embeddings.token_embedding.embeddings, tensors.get("wte.weight"), "wte.weight")
    assign(embeddings.position_embedding.embeddings, tensors.get("wpe.weight"), "wpe.weight")
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"h.{i}."
        attention = block.self_attention
        kernels = np.split(tensors.get(prefix + "attn.c_attn.weight"), 3, axis=1)
        biases = np.split(tensors.get(prefix + "attn.c_attn.bias"), 3)
        for dense, kernel, bias in zip(
            (attention.query_dense, attention.key_dense, attention.value_dense), kernels, biases
        ):
            copy_dense(dense, kernel, bias, prefix + "attn.c_attn")
        tensors.dense(attention.output_dense, prefix + "attn.c_proj", transpose=False)
        tensors.dense(block.feedforward_intermediate_dense, prefix + "mlp.c_fc", transpose=False)
        tensors.dense(block.feedforward_output_dense, prefix + "mlp.c_proj", transpose=False)
        tensors.layer_norm(block.self_attention_layer_norm, prefix + "ln_1")
        tensors.layer_norm(block.feedforward_layer_norm, prefix + "ln_2")
    tensors.layer_norm(backbone.layer_norm, "ln_f")
