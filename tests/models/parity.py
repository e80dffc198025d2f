"""Comparing our models with keras-hub's: copying keras-hub weights into ours, and
checking the outputs on both attention paths."""

import keras
import numpy as np

from reference_impl.checkpoints import assign, copy_dense, copy_layer_norm


def set_fused_attention(backbone, fused):
    for layer in backbone._flatten_layers():
        if hasattr(layer, "use_fused_attention") and hasattr(layer, "query_dense"):
            layer.use_fused_attention = fused


def max_abs_error(a, b):
    return float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))


def assert_match_on_both_attention_paths(ours, inputs, expected, tolerance=1e-5):
    """`ours(inputs)` equals `expected` (dict of outputs) with fused and plain attention."""
    for fused in (True, False):
        set_fused_attention(ours, fused)
        got = ours(inputs)
        if not isinstance(got, dict):  # GPTBackbone returns the sequence output alone
            got = {"sequence_output": got}
        for key, value in expected.items():
            error = max_abs_error(got[key], value)
            assert error < tolerance, (key, f"fused={fused}", error)
    set_fused_attention(ours, True)


# keras-hub -> kit (same config), for the parity tests


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


def copy_keras_hub_embeddings(ours, token, position, norm, segment=None):
    """keras-hub's separate embedding layers -> our `Embeddings` layer."""
    assign(ours.token_embedding.embeddings, token.embeddings.numpy())
    assign(ours.position_embedding.embeddings, position.position_embeddings.numpy())
    if segment is not None:
        assign(ours.segment_embedding.embeddings, segment.embeddings.numpy())
    copy_layer_norm(ours.layer_norm, norm.gamma.numpy(), norm.beta.numpy())


def copy_keras_hub_bert(ours, theirs):
    """keras-hub `BertBackbone` -> `reference_impl.bert.BertBackbone` (same config)."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


def copy_keras_hub_roberta(ours, theirs):
    """keras-hub `RobertaBackbone` -> `reference_impl.roberta.RobertaBackbone`."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.embeddings.token_embedding,
                              theirs.embeddings.position_embedding, theirs.embeddings_layer_norm)
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)


def copy_keras_hub_albert(ours, theirs):
    """keras-hub `AlbertBackbone` -> `reference_impl.albert.AlbertBackbone`, group by group."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    projection = theirs.embeddings_projection
    copy_dense(ours.embeddings_projection, projection.kernel.numpy(), projection.bias.numpy())
    for our_group, their_group in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        for our_block, their_block in zip(our_group, their_group, strict=True):
            copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


def copy_keras_hub_electra(ours, theirs):
    """keras-hub `ElectraBackbone` -> `reference_impl.electra.ElectraBackbone`."""
    copy_keras_hub_embeddings(ours.embeddings, theirs.token_embedding, theirs.position_embedding,
                              theirs.embeddings_layer_norm, theirs.segment_embedding)
    if ours.embeddings_projection is not None:
        projection = theirs.embeddings_projection
        copy_dense(ours.embeddings_projection, projection.kernel.numpy(), projection.bias.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_dense(ours.pooled_dense, theirs.pooled_dense.kernel.numpy(), theirs.pooled_dense.bias.numpy())


def copy_keras_hub_gpt2(ours, theirs):
    """keras-hub `GPT2Backbone` -> `reference_impl.gpt.GPTBackbone` (same config)."""
    emb = ours.embeddings
    assign(emb.token_embedding.embeddings, theirs.token_embedding.embeddings.numpy())
    assign(emb.position_embedding.embeddings, theirs.position_embedding.position_embeddings.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        copy_keras_hub_transformer_layer(our_block, their_block)
    copy_layer_norm(ours.layer_norm, theirs.layer_norm.gamma.numpy(), theirs.layer_norm.beta.numpy())


def copy_keras_hub_xlnet(ours, theirs):
    """keras-hub `XLNetBackbone` -> `reference_impl.xlnet.XLNetBackbone` (same config)."""
    assign(ours.embeddings.embeddings, theirs.content_query_embedding.word_embed.embeddings.numpy())
    assign(ours.query_stream_start.mask_emb, theirs.attn_mask_layer.mask_emb.numpy())
    for our_block, their_block in zip(ours.transformer_layers, theirs.transformer_layers, strict=True):
        attention, their_attention = our_block.relative_attention, their_block.relative_attention
        for name in ("content_attention_bias", "positional_attention_bias", "segment_attention_bias",
                     "segment_encoding"):
            assign(getattr(attention, name), getattr(their_block, name).numpy())
        for ours_dense, their_dense in (
            (attention.query_dense, their_attention._query_dense),
            (attention.key_dense, their_attention._key_dense),
            (attention.value_dense, their_attention._value_dense),
            (attention.encoding_dense, their_attention._encoding_dense),
            (attention.output_dense, their_attention._output_dense),
        ):
            assign(ours_dense.kernel, their_dense.kernel.numpy())
        for our_norm, their_norm in ((our_block.attention_layer_norm, their_block.layer_norm),
                                     (our_block.feedforward_layer_norm, their_block.layer_norm_ff)):
            copy_layer_norm(our_norm, their_norm.gamma.numpy(), their_norm.beta.numpy())
        for our_dense, their_dense in (
            (our_block.feedforward_intermediate_dense, their_block.feedforward_intermediate_dense),
            (our_block.feedforward_output_dense, their_block.feedforward_output_dense),
        ):
            copy_dense(our_dense, their_dense.kernel.numpy(), their_dense.bias.numpy())


def copy_keras_hub_t5(ours, theirs):
    """keras-hub `T5Backbone` -> `reference_impl.t5.T5Backbone` (same config).

    keras-hub keeps each stack's relative position table in its first
    layer's self-attention; ours is a layer of its own per stack.
    """
    assign(ours.token_embedding.embeddings, theirs.token_embedding.embeddings.numpy())
    if not ours.get_config()["tie_embedding_weights"]:
        assign(ours.token_embedding.reverse_embeddings, theirs.token_embedding.reverse_embeddings.numpy())
    for stack in ("encoder", "decoder"):
        our_layers = getattr(ours, f"{stack}_transformer_layers")
        their_layers = getattr(theirs, f"{stack}_transformer_layers")
        assign(getattr(ours, f"{stack}_position_bias").embeddings,
               their_layers[0].self_attention.relative_attention_bias.numpy())
        for our_block, their_block in zip(our_layers, their_layers, strict=True):
            attentions = [("self_attention", "self_attention_layer_norm")]
            if stack == "decoder":
                attentions.append(("cross_attention", "cross_attention_layer_norm"))
            for attention, norm in attentions:
                our_attention, their_attention = getattr(our_block, attention), getattr(their_block, attention)
                for our_dense, their_name in (("query_dense", "query_projector"), ("key_dense", "key_projector"),
                                              ("value_dense", "value_projector"),
                                              ("output_dense", "output_projector")):
                    copy_dense(getattr(our_attention, our_dense),
                               getattr(their_attention, their_name).kernel.numpy())
                assign(getattr(our_block, norm).weight, getattr(their_block, norm).weight.numpy())
            copy_dense(our_block.feedforward_intermediate_dense, their_block.input_projector.kernel.numpy())
            if our_block.feedforward_gate_dense is not None:
                copy_dense(our_block.feedforward_gate_dense, their_block.gate_projector.kernel.numpy())
            copy_dense(our_block.feedforward_output_dense, their_block.output_projector.kernel.numpy())
            assign(our_block.feedforward_layer_norm.weight, their_block.layer_norm.weight.numpy())
        assign(getattr(ours, f"{stack}_layer_norm").weight,
               getattr(theirs, f"{stack}_layer_norm").weight.numpy())
