"""RoBERTa (Liu et al., 2019): BERT's encoder, trained better.

The network is BERT's with three small differences: no segment embeddings
(there is no sentence pair to tell apart), the exact erf GELU, and LayerNorm
epsilon 1e-5. What changed is the training recipe, which lives in the data
pipeline rather than here: dynamic masking, no next-sentence prediction,
FULL-SENTENCES packing and large batches (see `reference_impl.pretraining`).
So `RobertaPretrainer` has one objective, masked-language modelling.

Arguments and input names are keras-hub's `RobertaBackbone`'s. keras-hub
returns the sequence output as a bare tensor; here the output is a dict like
every other encoder in the kit (see `RobertaBackbone`).
"""

import keras

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_roberta
from reference_impl.layers import (
    Embeddings,
    MaskedLMHead,
    TransformerBlock,
    bert_initializer,
    register,
)


@register
class RobertaBackbone(Backbone):
    """Token + position embeddings and `num_layers` post-LayerNorm blocks.

    Inputs (dict): `token_ids` [B, T] int and `padding_mask` [B, T] (1 for real
    tokens). Outputs (dict): `sequence_output` [B, T, H] and `pooled_output`
    [B, H]. RoBERTa has no pooler (the pooler exists to serve NSP, which RoBERTa
    dropped), so `pooled_output` is the hidden state of the start token <s>
    itself, with no extra weights: the parameter count stays keras-hub's, and
    heads that read `pooled_output` work on every encoder alike.
    """

    family = "roberta"
    hugging_face_converter = convert_roberta

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=128, intermediate_dim=512),
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                     vocabulary_size=50265),
    }

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        use_fused_attention=True,
        dtype=None,
        **kwargs,
    ):
        self.embeddings = Embeddings(
            vocabulary_size, max_sequence_length, hidden_dim, num_segments=0,
            dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
            name="embeddings",
        )
        self.transformer_layers = [
            TransformerBlock(
                num_heads, hidden_dim, intermediate_dim, dropout=dropout,
                activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
                kernel_initializer=bert_initializer(), dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)

        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": x[:, 0, :]},
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers,
                num_heads=num_heads, hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim, dropout=dropout,
                max_sequence_length=max_sequence_length, activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
            ),
            dtype=dtype,
            **kwargs,
        )


@register
class RobertaPretrainer(WrapsBackbone, keras.Model):
    """Masked-language modelling only (no NSP) on top of a `RobertaBackbone`.

    Extra input `mask_positions` [B, P]; output `mlm_logits` [B, P, V]. Feed it
    dynamically masked FULL-SENTENCES batches:
    `MaskedLMDataset(pack_sentences(...), masking, dynamic=True)`.
    """

    def __init__(self, backbone, **kwargs):
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32",
                                               name="mask_positions")
        outputs = backbone({k: inputs[k] for k in backbone.input})
        self.backbone = backbone
        config = backbone.get_config()
        self.mlm_head = MaskedLMHead(
            backbone.token_embedding,
            activation=config["activation"],
            layer_norm_epsilon=config["layer_norm_epsilon"],
            dtype=backbone.dtype_policy, name="mlm_head",
        )
        mlm_logits = self.mlm_head(outputs["sequence_output"], inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs={"mlm_logits": mlm_logits}, **kwargs)
