"""GPT-2 (Radford et al., 2019): a left-to-right Transformer decoder.

`GPTBackbone` maps token ids to contextual vectors in which position i has
only seen tokens 0..i (a causal mask inside every block). `GPTCausalLM` adds
the language-model head, tied to the token embedding, and a key/value cache
for decoding; `reference_impl.generation` samples from it. Two fine-tuning
models read the hidden state of the last real token, the only position that
has seen the whole input: `GPTClassifier` (a new linear head) and
`GPTLabelWordClassifier` (the LM's own scores for one word per label, with no
new weights: the zero-shot baseline). The pretraining helpers at the end
prepare next-token targets, measure perplexity and report throughput.

Arguments, input names and outputs are keras-hub's `GPT2Backbone`'s.
"""

import math
import time

import keras
import numpy as np
from keras import ops

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_gpt2
from reference_impl.layers import Embeddings, TransformerBlock, register


def gpt_initializer(stddev=0.02):
    return keras.initializers.RandomNormal(stddev=stddev)


@register
class GPTBackbone(Backbone):
    """Token + position embeddings, `num_layers` pre-LayerNorm causal blocks, a final LayerNorm.

    Inputs (dict): `token_ids` [B, T] int and `padding_mask` [B, T] (1 for
    real tokens). Output: the sequence output [B, T, H], a single tensor as in
    keras-hub. Pre-LayerNorm blocks leave the residual stream unnormalised,
    hence the LayerNorm after the last block. GELU is the tanh approximation,
    as in OpenAI's GPT-2 ("gelu_new" in Hugging Face configs) and keras-hub.
    """

    family = "gpt"
    hugging_face_converter = convert_gpt2

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256,
                     max_sequence_length=128),
        "small": dict(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024,
                      max_sequence_length=256),
        # GPT-2 "124M" (gpt2_base_en): 124,439,808 parameters with the tied head.
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                     max_sequence_length=1024, vocabulary_size=50257),
    }

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=1024,
        layer_norm_epsilon=1e-5,
        use_fused_attention=True,
        dtype=None,
        **kwargs,
    ):
        self.embeddings = Embeddings(
            vocabulary_size, max_sequence_length, hidden_dim, dropout=dropout,
            normalize=False, embeddings_initializer=gpt_initializer(), dtype=dtype,
            name="embeddings",
        )
        self.transformer_layers = [
            TransformerBlock(
                num_heads, hidden_dim, intermediate_dim, dropout=dropout,
                activation="gelu_approximate", layer_norm_epsilon=layer_norm_epsilon,
                normalize_first=True, use_causal_mask=True,
                use_fused_attention=use_fused_attention,
                kernel_initializer=gpt_initializer(), dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = self.embeddings(token_ids)
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        sequence_output = self.layer_norm(x)

        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=sequence_output,
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers,
                num_heads=num_heads, hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim, dropout=dropout,
                max_sequence_length=max_sequence_length,
                layer_norm_epsilon=layer_norm_epsilon,
                use_fused_attention=use_fused_attention,
            ),
            dtype=dtype,
            **kwargs,
        )

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Run new tokens against cached keys and values of earlier positions.

        token_ids [B, t] sit at positions cache_update_index .. + t - 1;
        cache [B, num_layers, 2, h, T_max, d]. Returns (sequence output
        [B, t, H], updated cache). No padding mask: the causal mask already
        hides every position not yet written.
        """
        x = self.embeddings(token_ids, start_index=cache_update_index)
        layer_caches = []
        for i, block in enumerate(self.transformer_layers):
            x, layer_cache = block(x, cache=cache[:, i], cache_update_index=cache_update_index)
            layer_caches.append(layer_cache)
        return self.layer_norm(x), ops.stack(layer_caches, axis=1)

    def empty_cache(self, batch_size, max_length):
        """Zeros of shape [B, num_layers, 2, h, max_length, d]."""
        config = self.get_config()
        num_heads = config["num_heads"]
        head_dim = config["hidden_dim"] // num_heads
        shape = (batch_size, config["num_layers"], 2, num_heads, max_length, head_dim)
        return ops.zeros(shape, dtype=self.compute_dtype)


@register
class GPTCausalLM(WrapsBackbone, keras.Model):
    """Next-token logits at every position: hidden states times the transposed token table.

    Inputs as the backbone's; output `logits` [B, T, V], where position i
    predicts token i + 1. Train on `next_token_batches(...)` after
    `compile_causal_lm(...)`.
    """

    def __init__(self, backbone, **kwargs):
        self.backbone = backbone
        inputs = dict(backbone.input)
        hidden = backbone(inputs)
        logits = backbone.token_embedding(hidden, reverse=True)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """(logits [B, t, V], cache) for new tokens; see `GPTBackbone.call_with_cache`."""
        hidden, cache = self.backbone.call_with_cache(token_ids, cache, cache_update_index)
        return self.backbone.token_embedding(hidden, reverse=True), cache


# --------------------------------------------------------------------------
# Fine-tuning: read the last real token
# --------------------------------------------------------------------------


@register
class LastTokenPooling(keras.layers.Layer):
    """[B, T, H] -> [B, H]: the vector at each row's last non-padding position.

    In a decoder only the last position has attended to the whole input, so
    it plays the part of BERT's [CLS]. Assumes right padding.
    """

    def call(self, sequence_output, padding_mask):
        last = ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1
        last = ops.maximum(last, 0)[:, None, None]
        return ops.take_along_axis(sequence_output, last, axis=1)[:, 0]


@register
class GPTClassifier(WrapsBackbone, keras.Model):
    """A linear head from scratch on the last real token; the whole decoder fine-tunes.

    Output: logits [B, num_classes]. Compile with
    SparseCategoricalCrossentropy(from_logits=True).
    """

    config_arguments = ("num_classes", "dropout")

    def __init__(self, backbone, num_classes, dropout=0.1, **kwargs):
        self.backbone = backbone
        self.num_classes = num_classes
        self.dropout = dropout
        inputs = dict(backbone.input)
        pooled = LastTokenPooling(name="last_token")(backbone(inputs), inputs["padding_mask"])
        pooled = keras.layers.Dropout(dropout, name="classifier_dropout")(pooled)
        logits = keras.layers.Dense(
            num_classes, kernel_initializer=gpt_initializer(), name="classifier_head"
        )(pooled)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)


@register
class GPTLabelWordClassifier(WrapsBackbone, keras.Model):
    """Language model as classifier: score one vocabulary token per label.

    The input is a prompt ending where the label word would come (e.g.
    "... The review is"); the class logits are the LM's next-token logits for
    `label_token_ids` (e.g. the ids of " negative" and " positive") at the
    last real token. No new weights: the baseline a trained head must beat.
    """

    config_arguments = ("label_token_ids",)

    def __init__(self, backbone, label_token_ids, **kwargs):
        self.backbone = backbone
        self.label_token_ids = [int(i) for i in label_token_ids]
        inputs = dict(backbone.input)
        last = LastTokenPooling(name="last_token")(backbone(inputs), inputs["padding_mask"])
        vocabulary_logits = backbone.token_embedding(last, reverse=True)
        logits = ops.take(vocabulary_logits, np.array(self.label_token_ids, "int32"), axis=1)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)


# --------------------------------------------------------------------------
# Pretraining: targets, perplexity, throughput
# --------------------------------------------------------------------------


def next_token_batches(token_ids, padding_mask):
    """(x, y, sample_weight) for causal-LM training: predict token i + 1 from 0..i.

    Inputs drop the last position and targets the first; a target that is
    padding gets weight 0, so padding never enters the loss.
    """
    token_ids, padding_mask = np.asarray(token_ids), np.asarray(padding_mask)
    x = {"token_ids": token_ids[:, :-1], "padding_mask": padding_mask[:, :-1]}
    return x, token_ids[:, 1:], padding_mask[:, 1:].astype("float32")


def compile_causal_lm(model, optimizer=None, jit_compile="auto", **optimizer_args):
    """Cross-entropy from logits, averaged over real target tokens.

    jit_compile=False skips XLA compilation, which costs more than it saves
    for tiny models trained for a few hundred steps on a CPU.
    """
    from reference_impl.optimization import adamw

    model.compile(
        optimizer=optimizer or adamw(**optimizer_args),
        # Divide by the number of real targets, not by all positions.
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"),
        weighted_metrics=[],
        jit_compile=jit_compile,
    )
    return model


def perplexity(causal_lm, token_ids, padding_mask, batch_size=32):
    """exp(mean next-token cross-entropy over real target tokens)."""
    x, y, weights = next_token_batches(token_ids, padding_mask)
    total, count = 0.0, 0.0
    for start in range(0, len(y), batch_size):
        part = slice(start, start + batch_size)
        logits = causal_lm({k: v[part] for k, v in x.items()}, training=False)
        losses = keras.losses.sparse_categorical_crossentropy(y[part], logits, from_logits=True)
        total += float(ops.sum(losses * weights[part]))
        count += float(weights[part].sum())
    return math.exp(total / count)


def unigram_perplexity(train_ids, train_mask, test_ids, test_mask, vocabulary_size):
    """Perplexity of add-one-smoothed token frequencies: the floor a language model must beat.

    Scored on the same targets as `perplexity` (every real token but the first of a row).
    """
    counts = np.bincount(np.asarray(train_ids)[np.asarray(train_mask) == 1],
                         minlength=vocabulary_size) + 1.0
    log_probs = np.log(counts / counts.sum())
    targets = np.asarray(test_ids)[:, 1:][np.asarray(test_mask)[:, 1:] == 1]
    return math.exp(-log_probs[targets].mean())


def non_embedding_parameters(backbone):
    """N in the FLOPs estimate: all weights but the position table (nanoGPT's count).

    The token table stays in because it is also the output layer's matrix.
    """
    return backbone.count_params() - int(np.prod(backbone.embeddings.position_embedding.embeddings.shape))


def flops_per_token(backbone, sequence_length):
    """Training FLOPs per token, 6N + 12 L H T (Kaplan et al. 2020, as in nanoGPT).

    6N: forward (2N) and backward (4N) matrix products with the weights;
    12 L H T: the attention scores and weighted sums, which grow with T.
    """
    config = backbone.get_config()
    return (6 * non_embedding_parameters(backbone)
            + 12 * config["num_layers"] * config["hidden_dim"] * sequence_length)


class ThroughputMonitor(keras.callbacks.Callback):
    """Prints training tokens/s and model FLOPs utilisation after each epoch.

    Every position is counted, padding included: the model computes on it.

    MFU = achieved FLOPs/s (tokens/s x `flops_per_token`) over the device's
    peak, `peak_flops` (e.g. 989e12 for an H100's dense bf16); without a peak
    only tokens/s is printed. The first epoch includes compilation time.
    """

    def __init__(self, tokens_per_epoch, flops_per_token, peak_flops=None, print_fn=print):
        super().__init__()
        self.tokens_per_epoch = tokens_per_epoch
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.print_fn = print_fn
        self.history = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        tokens_per_second = self.tokens_per_epoch / seconds
        achieved = tokens_per_second * self.flops_per_token
        mfu = achieved / self.peak_flops if self.peak_flops else None
        self.history.append({"tokens_per_second": tokens_per_second, "mfu": mfu})
        line = f"epoch {epoch + 1}: {tokens_per_second:,.0f} tokens/s, {achieved / 1e9:,.2f} GFLOP/s"
        line += f", MFU {mfu:.2%}" if mfu is not None else " (MFU: give peak_flops)"
        self.print_fn(line)


def pretrain_causal_lm(causal_lm, token_ids, padding_mask, epochs=1, batch_size=16,
                       peak_flops=None, validation=None, verbose=0, **optimizer_args):
    """Compile (if needed) and fit on next-token targets, printing throughput.

    `validation` is an optional (token_ids, padding_mask) pair. Returns the
    Keras history; the throughput figures are in `history.throughput`.
    """
    if not causal_lm.compiled:
        compile_causal_lm(causal_lm, **optimizer_args)
    x, y, weights = next_token_batches(token_ids, padding_mask)
    sequence_length = y.shape[1]
    monitor = ThroughputMonitor(y.size,
                                flops_per_token(causal_lm.backbone, sequence_length), peak_flops)
    validation_data = next_token_batches(*validation) if validation is not None else None
    history = causal_lm.fit(x, y, sample_weight=weights, batch_size=batch_size, epochs=epochs,
                            validation_data=validation_data, callbacks=[monitor],
                            verbose=verbose)
    history.throughput = monitor.history
    return history
