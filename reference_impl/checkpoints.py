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
