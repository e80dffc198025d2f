"""ALBERT (Lan et al., 2020): BERT with far fewer parameters.

Two ideas cut the parameters, and one replaces NSP:
- Factorised embedding: tokens are embedded in a small E-dimensional space
  (E = 128 for ALBERT-base) and projected up to the hidden width H = 768, so
  the vocabulary table costs V*E + E*H instead of V*H.
- Cross-layer sharing: the `num_layers` layer applications reuse the weights
  of `num_groups` groups, each group holding `num_inner_repetitions` distinct
  Transformer blocks (keras-hub's meaning). The groups run in order; each is
  applied `num_layers // num_groups` times in a row, every application running
  all of its inner blocks. ALBERT-base: 1 group of 1 block, applied 12 times.
- Sentence-order prediction (SOP): given two consecutive segments of one
  document, were they swapped? Harder than NSP, which topic alone gives away.

Arguments, input names and output names are keras-hub's `AlbertBackbone`'s.
"""

import keras

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_albert
from reference_impl.layers import (
    Embeddings,
    MaskedLMHead,
    TransformerBlock,
    bert_initializer,
    register,
)


@register
class AlbertBackbone(Backbone):
    """E-wide embeddings, a projection to H, shared Transformer groups, a pooler.

    Inputs (dict): `token_ids`, `segment_ids`, `padding_mask`, each [B, T].
    Outputs (dict): `sequence_output` [B, T, H] and `pooled_output` [B, H]
    (tanh(W h_[CLS] + b), which the SOP head reads).
    """

    family = "albert"
    hugging_face_converter = convert_albert

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, embedding_dim=64, hidden_dim=128,
                     intermediate_dim=512),
        "base": dict(num_layers=12, num_heads=12, embedding_dim=128, hidden_dim=768,
                     intermediate_dim=3072, vocabulary_size=30000),
    }

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        embedding_dim,
        hidden_dim,
        intermediate_dim,
        num_groups=1,
        num_inner_repetitions=1,
        dropout=0.0,
        max_sequence_length=512,
        num_segments=2,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        use_fused_attention=True,
        dtype=None,
        **kwargs,
    ):
        if num_layers % num_groups:
            raise ValueError(
                f"num_layers ({num_layers}) must be divisible by num_groups ({num_groups}): "
                "each group is applied num_layers // num_groups times."
            )
        self.embeddings = Embeddings(
            vocabulary_size, max_sequence_length, embedding_dim, num_segments=num_segments,
            dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
            name="embeddings",
        )
        self.embeddings_projection = keras.layers.Dense(
            hidden_dim, kernel_initializer=bert_initializer(), dtype=dtype,
            name="embedding_projection",
        )
        # transformer_layers[g][i]: inner block i of group g.
        self.transformer_layers = [
            [
                TransformerBlock(
                    num_heads, hidden_dim, intermediate_dim, dropout=dropout,
                    activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                    use_fused_attention=use_fused_attention,
                    kernel_initializer=bert_initializer(), dtype=dtype,
                    name=f"group_{group}_inner_layer_{inner}",
                )
                for inner in range(num_inner_repetitions)
            ]
            for group in range(num_groups)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=bert_initializer(),
            dtype=dtype, name="pooled_dense",
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings_projection(self.embeddings(token_ids, segment_ids))
        for group in self.transformer_layers:
            for _ in range(num_layers // num_groups):
                for block in group:
                    x = block(x, padding_mask=padding_mask)
        pooled = self.pooled_dense(x[:, 0, :])

        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers,
                num_heads=num_heads, embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim, num_groups=num_groups,
                num_inner_repetitions=num_inner_repetitions, dropout=dropout,
                max_sequence_length=max_sequence_length, num_segments=num_segments,
                activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
            ),
            dtype=dtype,
            **kwargs,
        )


@register
class AlbertPretrainer(WrapsBackbone, keras.Model):
    """MLM + sentence-order prediction on top of an `AlbertBackbone`.

    Extra input `mask_positions` [B, P]. Outputs: `mlm_logits` [B, P, V] (the
    head projects H back to E, then multiplies by the tied E-wide token table)
    and `sop_logits` [B, 2] (label 1 = the two segments were swapped; build
    the pairs with `sentence_pair_examples(..., objective="sop")`).
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
        self.sop_head = keras.layers.Dense(
            2, kernel_initializer=bert_initializer(), dtype=backbone.dtype_policy,
            name="sop_head",
        )
        mlm_logits = self.mlm_head(outputs["sequence_output"], inputs["mask_positions"])
        sop_logits = self.sop_head(outputs["pooled_output"])
        super().__init__(
            inputs=inputs,
            outputs={"mlm_logits": mlm_logits, "sop_logits": sop_logits},
            **kwargs,
        )
