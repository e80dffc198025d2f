"""ELECTRA (Clark et al., 2020): learn from every token, not just the masked 15%.

A small generator (a masked LM) fills the masked positions with tokens it
samples; a discriminator reads the result and says, for *every* token, whether
it is the original or a replacement (replaced-token detection, RTD). The
discriminator is the model kept for fine-tuning. Both share the embedding
tables (token, position, segment and their LayerNorm), so the generator's
MLM gradient trains the discriminator's embeddings too.

`ElectraBackbone` is the encoder, with keras-hub's arguments except that the
vocabulary size is `vocabulary_size`, as in every other model of the kit
(keras-hub's ELECTRA alone spells it `vocab_size`); `ElectraPretrainer` builds the
generator around a discriminator backbone and trains both with one loss:
generator MLM loss + 50 * discriminator RTD loss (the paper's lambda).
"""

import keras
from keras import ops

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_electra
from reference_impl.layers import (
    Embeddings,
    MaskedLMHead,
    TransformerBlock,
    bert_initializer,
    get_activation,
    register,
)


def transformer_stack(name, num_layers, num_heads, hidden_dim, intermediate_dim, dropout,
                      activation, layer_norm_epsilon, use_fused_attention, dtype):
    return [
        TransformerBlock(
            num_heads, hidden_dim, intermediate_dim, dropout=dropout, activation=activation,
            layer_norm_epsilon=layer_norm_epsilon, use_fused_attention=use_fused_attention,
            kernel_initializer=bert_initializer(), dtype=dtype, name=f"{name}_{i}",
        )
        for i in range(num_layers)
    ]


@register
class ElectraBackbone(Backbone):
    """E-wide embeddings, a projection to H when E != H, blocks and a pooler.

    Inputs (dict): `token_ids`, `segment_ids`, `padding_mask`, each [B, T].
    Outputs (dict): `sequence_output` [B, T, H] and `pooled_output` [B, H].
    ELECTRA itself never trains the pooler (no NSP); it is here because
    keras-hub has it, and fine-tuning trains it with the task head.
    """

    family = "electra"
    hugging_face_converter = convert_electra

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=128, embedding_dim=64,
                     intermediate_dim=512),
        "small": dict(num_layers=12, num_heads=4, hidden_dim=256, embedding_dim=128,
                      intermediate_dim=1024, vocabulary_size=30522),
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768, embedding_dim=768,
                     intermediate_dim=3072, vocabulary_size=30522),
    }

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        embedding_dim,
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
            vocabulary_size, max_sequence_length, embedding_dim, num_segments=num_segments,
            dropout=dropout, layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
            name="embeddings",
        )
        self.embeddings_projection = (
            keras.layers.Dense(hidden_dim, kernel_initializer=bert_initializer(),
                               dtype=dtype, name="embeddings_projection")
            if hidden_dim != embedding_dim
            else None
        )
        self.transformer_layers = transformer_stack(
            "transformer_layer", num_layers, num_heads, hidden_dim, intermediate_dim,
            dropout, activation, layer_norm_epsilon, use_fused_attention, dtype,
        )
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=bert_initializer(),
            dtype=dtype, name="pooled_dense",
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids, segment_ids)
        if self.embeddings_projection is not None:
            x = self.embeddings_projection(x)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        pooled = self.pooled_dense(x[:, 0, :])

        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads,
                hidden_dim=hidden_dim, embedding_dim=embedding_dim,
                intermediate_dim=intermediate_dim, dropout=dropout,
                max_sequence_length=max_sequence_length, num_segments=num_segments,
                activation=activation, layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
            ),
            dtype=dtype,
            **kwargs,
        )


def scatter_at_positions(token_ids, positions, values, weights):
    """token_ids [B, T] with values [B, P] written at positions [B, P] where weights > 0.

    Slots with weight 0 (padding of the prediction list) write nothing.
    """
    length = ops.shape(token_ids)[1]
    chosen = ops.one_hot(positions, length, dtype="int32") * ops.cast(weights > 0, "int32")[..., None]
    written = ops.sum(chosen, axis=1)  # [B, T]: 1 where some slot writes
    return token_ids * (1 - written) + ops.sum(chosen * ops.cast(values, "int32")[..., None], axis=1)


def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, weights):
    """The discriminator's input and its RTD labels, both [B, T].

    `token_ids` are the masked inputs; the generator's `sampled_ids` [B, P] fill
    the masked positions. A token is labelled 1 ("replaced") only where the
    result differs from the original: a sampled token that happens to equal the
    original counts as original, as in the paper. Slots with weight 0 write nothing.
    """
    corrupted = scatter_at_positions(token_ids, mask_positions, sampled_ids, weights)
    original = scatter_at_positions(token_ids, mask_positions, original_ids, weights)
    return corrupted, ops.cast(ops.not_equal(corrupted, original), "float32")


def replaced_token_detection_loss(logits, is_replaced, padding_mask):
    """Sigmoid cross-entropy of the per-token logits [B, T], mean over non-padding tokens."""
    token_weights = ops.cast(padding_mask, "float32")
    token_losses = keras.losses.binary_crossentropy(
        ops.cast(is_replaced, "float32")[..., None], ops.cast(logits, "float32")[..., None],
        from_logits=True)
    return ops.sum(token_losses * token_weights) / ops.sum(token_weights)


@register
class ElectraPretrainer(WrapsBackbone, keras.Model):
    """Generator + discriminator, trained with MLM + 50 * RTD.

    Inputs (dict): the discriminator's inputs with masked `token_ids`, plus
    `mask_positions` [B, P]. Output: `mlm_logits` [B, P, V], the generator's
    predictions. Train it with the data format of the other pretrainers
    (`reference_impl.pretraining.MaskedLMDataset`): y = {"mlm_logits": the
    original ids at the masked positions}, sample_weight = {"mlm_logits":
    1 for real predictions, 0 for padding slots}; compile with an optimizer
    only. The paper masks 15% and replaces 85% of those with [MASK], keeping
    the rest (mask_token_rate=0.85, random_token_rate=0.0).

    `compute_loss` does the rest of the step: it samples a replacement at each
    masked position from the generator's softmax (with a `SeedGenerator`, so
    runs are reproducible and each step draws afresh), runs the discriminator
    on the corrupted sequence and scores every non-padding token. A sampled
    token that happens to equal the original counts as original, as in the
    paper. No gradient flows through the sampling.

    The generator is the discriminator's shape scaled by `generator_size` in
    width, heads and feed-forward size (the paper: 1/4 for small, 1/3 for
    base), with the same depth and the discriminator's embedding layer.
    """

    #: The paper's generator size for each discriminator size.
    generator_sizes = {"tiny": 0.25, "small": 0.25, "base": 1 / 3}
    wrapped_argument = "discriminator"
    config_arguments = ("generator_size", "discriminator_loss_weight", "seed")

    def __init__(self, discriminator, generator_size=0.25, discriminator_loss_weight=50.0,
                 seed=None, **kwargs):
        config = discriminator.get_config()
        dtype = discriminator.dtype_policy
        hidden_dim = round(config["hidden_dim"] * generator_size)
        num_heads = max(1, round(config["num_heads"] * generator_size))
        intermediate_dim = round(config["intermediate_dim"] * generator_size)

        self.generator_projection = (
            keras.layers.Dense(hidden_dim, kernel_initializer=bert_initializer(),
                               dtype=dtype, name="generator_embeddings_projection")
            if hidden_dim != config["embedding_dim"]
            else None
        )
        self.generator_layers = transformer_stack(
            "generator_layer", config["num_layers"], num_heads, hidden_dim, intermediate_dim,
            config["dropout"], config["activation"], config["layer_norm_epsilon"],
            config["use_fused_attention"], dtype,
        )
        self.generator_head = MaskedLMHead(
            discriminator.token_embedding, activation=config["activation"],
            layer_norm_epsilon=config["layer_norm_epsilon"], dtype=dtype,
            name="generator_mlm_head",
        )

        inputs = dict(discriminator.input)
        inputs["mask_positions"] = keras.Input(shape=(None,), dtype="int32",
                                               name="mask_positions")
        x = discriminator.embeddings(inputs["token_ids"], inputs["segment_ids"])
        if self.generator_projection is not None:
            x = self.generator_projection(x)
        for block in self.generator_layers:
            x = block(x, padding_mask=inputs["padding_mask"])
        mlm_logits = self.generator_head(x, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs={"mlm_logits": mlm_logits}, **kwargs)

        self.discriminator = discriminator
        # ELECTRA's objectives never read the pooler; frozen so that no
        # optimizer step (weight decay included) touches it before fine-tuning.
        discriminator.pooled_dense.trainable = False
        # The RTD head: Dense + activation, then one logit per token.
        self.discriminator_dense = keras.layers.Dense(
            config["hidden_dim"], activation=get_activation(config["activation"]),
            kernel_initializer=bert_initializer(), dtype=dtype, name="discriminator_dense",
        )
        self.discriminator_prediction = keras.layers.Dense(
            1, kernel_initializer=bert_initializer(), dtype=dtype,
            name="discriminator_prediction",
        )
        # Built now: compute_loss runs inside compiled train steps, where
        # variables cannot be created.
        self.discriminator_dense.build((None, None, config["hidden_dim"]))
        self.discriminator_prediction.build((None, None, config["hidden_dim"]))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.generator_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.discriminator_loss_tracker = keras.metrics.Mean(name="discriminator_loss")
        self.generator_size = generator_size
        self.discriminator_loss_weight = discriminator_loss_weight
        self.seed = seed

    @classmethod
    def from_name(cls, name, **overrides):
        """The paper's pair for a size, e.g. `ElectraPretrainer.from_name("small")`."""
        discriminator = ElectraBackbone.from_name(name, **overrides)
        return cls(discriminator, generator_size=cls.generator_sizes[name])

    def replaced_token_logits(self, inputs, training=None):
        """Discriminator logits [B, T]: > 0 means "this token was replaced"."""
        hidden = self.discriminator(
            {k: ops.convert_to_tensor(inputs[k]) for k in ("token_ids", "segment_ids", "padding_mask")},
            training=training,
        )["sequence_output"]
        return self.discriminator_prediction(self.discriminator_dense(hidden))[..., 0]

    def sample_replacements(self, mlm_logits):
        """One token per masked position from the generator's softmax: [B, P]."""
        flat = ops.reshape(ops.stop_gradient(mlm_logits), (-1, ops.shape(mlm_logits)[-1]))
        samples = keras.random.categorical(flat, 1, seed=self.seed_generator, dtype="int32")
        return ops.reshape(samples, ops.shape(mlm_logits)[:2])

    def pretraining_losses(self, x, y, y_pred, sample_weight=None, training=None):
        """The two losses of one step, and the discriminator's inputs and labels.

        Returns dict: `generator_loss` (MLM cross-entropy, mean over real
        predictions), `discriminator_loss` (RTD binary cross-entropy, mean over
        non-padding tokens), `corrupted_ids` [B, T] and `is_replaced` [B, T].
        """
        mlm_logits = y_pred["mlm_logits"]
        original_ids = y["mlm_logits"]
        weights = (ops.ones_like(original_ids, dtype="float32") if sample_weight is None
                   else ops.cast(sample_weight["mlm_logits"], "float32"))

        token_losses = keras.losses.sparse_categorical_crossentropy(
            original_ids, mlm_logits, from_logits=True)
        generator_loss = ops.divide_no_nan(ops.sum(token_losses * weights), ops.sum(weights))

        sampled = self.sample_replacements(mlm_logits)
        corrupted, is_replaced = replaced_token_labels(
            x["token_ids"], x["mask_positions"], sampled, original_ids, weights)
        logits = self.replaced_token_logits({**x, "token_ids": corrupted}, training=training)
        discriminator_loss = replaced_token_detection_loss(logits, is_replaced, x["padding_mask"])
        return {"generator_loss": generator_loss, "discriminator_loss": discriminator_loss,
                "corrupted_ids": corrupted, "is_replaced": is_replaced}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses = self.pretraining_losses(x, y, y_pred, sample_weight, training=training)
        self.generator_loss_tracker.update_state(losses["generator_loss"])
        self.discriminator_loss_tracker.update_state(losses["discriminator_loss"])
        return losses["generator_loss"] + self.discriminator_loss_weight * losses["discriminator_loss"]

    def export_discriminator(self):
        """A standalone copy of the discriminator, the encoder to fine-tune."""
        backbone = ElectraBackbone.from_config(self.discriminator.get_config())
        backbone.set_weights(self.discriminator.get_weights())
        return backbone
