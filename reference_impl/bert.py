"""BERT (Devlin et al., 2019): a bidirectional Transformer encoder.

`BertBackbone` maps token ids to contextual vectors; `BertPretrainer` adds the
two pretraining objectives, masked-language modelling (predict the original
token at ~15% of positions) and next-sentence prediction (was sentence B the
real continuation of sentence A?). Task heads for fine-tuning are shared by all
encoders and live in `reference_impl.heads`.

Arguments, input names and output names are keras-hub's `BertBackbone`'s.
"""

import keras

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_bert
from reference_impl.layers import (
    Embeddings,
    MaskedLMHead,
    TransformerBlock,
    bert_initializer,
    register,
)


@register
class BertBackbone(Backbone):
    """Embeddings, `num_layers` post-LayerNorm Transformer blocks and a pooler.

    Inputs (dict): `token_ids` [B, T] int, `segment_ids` [B, T] int (0 for
    sentence A, 1 for B), `padding_mask` [B, T] (1 for real tokens).
    Outputs (dict): `sequence_output` [B, T, H] and `pooled_output` [B, H]
    (tanh(W h_[CLS] + b), the sentence vector NSP and classifiers read).
    `activation` is "gelu_approximate" as in keras-hub; checkpoints trained
    with the exact GELU (Hugging Face's "gelu") import with activation="gelu".
    """

    family = "bert"
    hugging_face_converter = convert_bert

    # The sizes of Turc et al. (2019) and BERT-base, with BERT's uncased
    # WordPiece vocabulary; pass vocabulary_size= for your own tokenizer.
    sizes = {
        name: dict(num_layers=layers, num_heads=hidden // 64, hidden_dim=hidden,
                   intermediate_dim=4 * hidden, vocabulary_size=30522)
        for name, layers, hidden in (("tiny", 2, 128), ("mini", 4, 256), ("small", 4, 512),
                                     ("medium", 8, 512), ("base", 12, 768))
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
        num_segments=2,
        activation="gelu_approximate",
        layer_norm_epsilon=1e-12,
        use_fused_attention=True,
        dtype=None,
        **kwargs,
    ):
        self.embeddings = Embeddings(
            vocabulary_size, max_sequence_length, hidden_dim, num_segments=num_segments,
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
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=bert_initializer(),
            dtype=dtype, name="pooled_dense",
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids, segment_ids)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        pooled = self.pooled_dense(x[:, 0, :])

        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers,
                num_heads=num_heads, hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim, dropout=dropout,
                max_sequence_length=max_sequence_length, num_segments=num_segments,
                activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
            ),
            dtype=dtype,
            **kwargs,
        )


@register
class BertPretrainer(WrapsBackbone, keras.Model):
    """MLM + NSP on top of a `BertBackbone`.

    Extra input `mask_positions` [B, P] says where the MLM head predicts (from
    `reference_impl.masking.mask_tokens`). Outputs: `mlm_logits` [B, P, V] and
    `nsp_logits` [B, 2]. Train with `fit(x, y={"mlm_logits": mask_ids,
    "nsp_logits": is_random_next}, sample_weight={"mlm_logits": mask_weights})`
    after `reference_impl.pretraining.compile_for_pretraining(model)`, which
    scores `mlm_logits` with `masked_lm_loss` and `nsp_logits` with plain
    cross-entropy.
    """

    def __init__(self, backbone, **kwargs):
        inputs = dict(backbone.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32",
                                               name="mask_positions")
        outputs = backbone({k: inputs[k] for k in backbone.input})
        self.backbone = backbone
        self.mlm_head = MaskedLMHead(
            backbone.token_embedding,
            activation=backbone.get_config()["activation"],
            layer_norm_epsilon=backbone.get_config()["layer_norm_epsilon"],
            dtype=backbone.dtype_policy, name="mlm_head",
        )
        self.nsp_head = keras.layers.Dense(
            2, kernel_initializer=bert_initializer(), dtype=backbone.dtype_policy,
            name="nsp_head",
        )
        mlm_logits = self.mlm_head(outputs["sequence_output"], inputs["mask_positions"])
        nsp_logits = self.nsp_head(outputs["pooled_output"])
        super().__init__(
            inputs=inputs,
            outputs={"mlm_logits": mlm_logits, "nsp_logits": nsp_logits},
            **kwargs,
        )
