"""Moving weights into the kit's models.

Two sources: keras-hub backbones (used to prove our models compute exactly the
same function) and Hugging Face checkpoint folders (`config.json`,
`model.safetensors`, vocabulary files), read with the `safetensors` library.
Each converter names every weight it sets; a shape mismatch raises an error
that names the weight.
"""

import numpy as np


def assign(variable, value, name=None):
    value = np.asarray(value)
    if tuple(variable.shape) != value.shape:
        raise ValueError(
            f"Cannot load {name or variable.path}: checkpoint shape {value.shape}, "
            f"model expects {tuple(variable.shape)}. Is the config the checkpoint's?"
        )
    variable.assign(value.astype(variable.dtype))


def copy_dense(ours, kernel, bias=None, name=None):
    """Copy into a Dense layer; keras-hub's per-head EinsumDense kernels are reshaped."""
    assign(ours.kernel, np.reshape(kernel, ours.kernel.shape), name)
    if bias is not None:
        assign(ours.bias, np.reshape(bias, ours.bias.shape), name)


def copy_layer_norm(ours, gamma, beta, name=None):
    assign(ours.gamma, gamma, name)
    assign(ours.beta, beta, name)


# --------------------------------------------------------------------------
# keras-hub -> kit
# --------------------------------------------------------------------------


def copy_keras_hub_transformer_layer(ours, theirs):
    """keras-hub `TransformerEncoder`/`TransformerDecoder` -> our `TransformerBlock`."""
    attention = getattr(theirs, "_self_attention_layer")
    for our_dense, their_dense in (
        (ours.self_attention.query_dense, attention._query_dense),
        (ours.self_attention.key_dense, attention._key_dense),
        (ours.self_attention.value_dense, attention._value_dense),
        (ours.self_attention.output_dense, attention._output_dense),
    ):
        copy_dense(our_dense, their_dense.kernel.numpy(), their_dense.bias.numpy(),
                   their_dense.path)
    for our_norm, their_norm in (
        (ours.self_attention_layer_norm, theirs._self_attention_layer_norm),
        (ours.feedforward_layer_norm, theirs._feedforward_layer_norm),
    ):
        copy_layer_norm(our_norm, their_norm.gamma.numpy(), their_norm.beta.numpy())
    for our_dense, their_dense in (
        (ours.feedforward_intermediate_dense, theirs._feedforward_intermediate_dense),
        (ours.feedforward_output_dense, theirs._feedforward_output_dense),
    ):
        copy_dense(our_dense, their_dense.kernel.numpy(), their_dense.bias.numpy())


def copy_keras_hub_bert(ours, theirs):
    """keras-hub `BertBackbone` -> `reference_impl.bert.BertBackbone` (same config)."""
    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, theirs.token_embedding.embeddings.numpy())
    assign(emb.position_embedding.embeddings, theirs.position_embedding.position_embeddings.numpy())
    assign(emb.segment_embedding.embeddings, theirs.segment_embedding.embeddings.numpy())
    norm = theirs.embeddings_layer_norm
    copy_layer_norm(emb.layer_norm, norm.gamma.numpy(), norm.beta.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


# --------------------------------------------------------------------------
# GPT-2: keras-hub and Hugging Face -> kit
# --------------------------------------------------------------------------


def copy_keras_hub_gpt2(ours, theirs):
    """keras-hub `GPT2Backbone` -> `reference_impl.gpt.GPTBackbone` (same config)."""
    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, theirs.token_embedding.embeddings.numpy())
    assign(emb.position_embedding.embeddings, theirs.position_embedding.position_embeddings.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_layer_norm(ours.layer_norm, theirs.layer_norm.gamma.numpy(), theirs.layer_norm.beta.numpy())


def gpt2_config_from_hugging_face(hf_config):
    """A Hugging Face GPT-2 `config.json` dict -> `GPTBackbone` arguments."""
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
        max_sequence_length=hf_config["n_positions"],
        layer_norm_epsilon=hf_config.get("layer_norm_epsilon", 1e-5),
    )


def copy_hugging_face_gpt2(ours, tensors):
    """Hugging Face GPT-2 tensors (dict name -> array) -> `GPTBackbone`.

    GPT-2 stores its projections as `Conv1D` with kernels [in, out] (Keras's
    Dense layout, no transpose) and the query, key and value projections fused
    in `attn.c_attn` ([H, 3H], in that order), which is split in three. Names
    may carry a `transformer.` prefix (GPT2LMHeadModel); the LM head is the
    token table, so `lm_head.weight` is not read.
    """
    def get(name):
        for key in (name, f"transformer.{name}"):
            if key in tensors:
                return np.asarray(tensors[key])
        raise KeyError(f"Checkpoint has no tensor {name!r}; is this a GPT-2 checkpoint?")

    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, get("wte.weight"), "wte.weight")
    assign(emb.position_embedding.embeddings, get("wpe.weight"), "wpe.weight")
    for i, block in enumerate(ours.transformer_layers):
        prefix = f"h.{i}."
        attention = block.self_attention
        kernels = np.split(get(prefix + "attn.c_attn.weight"), 3, axis=1)
        biases = np.split(get(prefix + "attn.c_attn.bias"), 3)
        for dense, kernel, bias in zip(
            (attention.query_dense, attention.key_dense, attention.value_dense), kernels, biases
        ):
            copy_dense(dense, kernel, bias, prefix + "attn.c_attn")
        for dense, name in (
            (attention.output_dense, "attn.c_proj"),
            (block.feedforward_intermediate_dense, "mlp.c_fc"),
            (block.feedforward_output_dense, "mlp.c_proj"),
        ):
            copy_dense(dense, get(prefix + name + ".weight"), get(prefix + name + ".bias"),
                       prefix + name)
        for norm, name in ((block.self_attention_layer_norm, "ln_1"),
                           (block.feedforward_layer_norm, "ln_2")):
            copy_layer_norm(norm, get(prefix + name + ".weight"), get(prefix + name + ".bias"),
                            prefix + name)
    copy_layer_norm(ours.layer_norm, get("ln_f.weight"), get("ln_f.bias"), "ln_f")


def load_hugging_face_gpt2(directory, dropout=0.0):
    """A Hugging Face GPT-2 folder (`config.json`, `model.safetensors`) -> `GPTBackbone`."""
    import json
    from pathlib import Path

    from safetensors.numpy import load_file

    from reference_impl.gpt import GPTBackbone

    directory = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (directory / name).is_file():
            raise FileNotFoundError(
                f"{directory} has no {name}; a Hugging Face GPT-2 folder needs "
                f"config.json and model.safetensors (save_pretrained writes both)."
            )
    config = gpt2_config_from_hugging_face(json.loads((directory / "config.json").read_text()))
    backbone = GPTBackbone(**config, dropout=dropout)
    copy_hugging_face_gpt2(backbone, load_file(directory / "model.safetensors"))
    return backbone
