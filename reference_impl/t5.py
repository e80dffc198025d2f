"""T5 (Raffel et al., 2020): an encoder-decoder Transformer trained text to text.

Every task is text in, text out: "sst2 sentence: a gripping film" -> "positive".
The encoder reads the input bidirectionally; the decoder writes the output one
token at a time, attending causally to what it has written (self-attention)
and to the whole encoder output (cross-attention). Pretraining is span
corruption (`reference_impl.span_corruption`): spans of the input are
replaced by sentinel tokens and the decoder writes the dropped spans.

What differs from BERT and GPT:
- No position embeddings. Each attention score gets a learned bias that
  depends on the (bucketed) distance between query and key
  (`relative_position_bucket`). One bias table per stack is shared by all its
  layers; the encoder's is bidirectional (keys before and after the query get
  different buckets), the decoder's causal.
- RMS layer norm (`T5LayerNorm`): x / sqrt(mean(x^2) + eps) * weight, with no
  mean subtraction and no bias; pre-norm blocks (x + sublayer(norm(x))).
- No biases anywhere and no 1/sqrt(d) in attention (T5 folds it into the
  query projection's initialisation).
- The feed-forward network is plain, act(x W_in) W_out (T5, activation
  "relu"), or gated, (act(x W_in) * x W_gate) W_out (T5 v1.1, FLAN-T5;
  `use_gated_activation`).
- Tied input and output embeddings; with tying the decoder output is scaled by
  hidden_dim**-0.5 before the output projection (`decoder_logits`).

`T5Seq2SeqLM` adds the language-model head; `generate` decodes greedily (or
samples) with a key/value cache: the decoder's self-attention keys and values
are written once per token, and the cross-attention keys and values of the
encoder output are computed once per input.

Arguments, input names and output names are keras-hub's `T5Backbone`'s.
"""

import keras
import numpy as np
from keras import ops

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_t5
from reference_impl.generation import choose_next_token
from reference_impl.layers import (
    get_activation,
    masked_score,
    padding_attention_mask,
    register,
    self_attention_mask,
)


@register
class T5LayerNorm(keras.layers.Layer):
    """RMS normalisation: x / sqrt(mean(x^2) + epsilon) * weight; no centring, no bias."""

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        self.weight = self.add_weight(name="weight", shape=(input_shape[-1],), initializer="ones")
        self.built = True

    def call(self, x):
        mean_square = ops.mean(ops.square(x), axis=-1, keepdims=True)
        return self.weight * (x * ops.rsqrt(mean_square + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def relative_position_bucket(relative_position, bidirectional, num_buckets=32, max_distance=128):
    """Key position minus query position -> a bucket in [0, num_buckets).

    Bidirectional (encoder): half the buckets are for keys after the query.
    Causal (decoder): keys after the query never count (the mask hides
    them), so every bucket is for distances backwards. Of the buckets
    available, half hold the exact distances 0, 1, ...; the other half cover
    larger distances on a log scale up to `max_distance`, and everything
    farther shares the last bucket: nearby order matters, far away only
    roughly. Computed in the same order as keras-hub and Mesh TensorFlow, so
    distances on a bucket boundary fall on the same side.
    """
    buckets = ops.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = ops.cast(relative_position > 0, relative_position.dtype) * num_buckets
        distance = ops.abs(relative_position)
    else:
        distance = -ops.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    # max(distance, 1): log(0) is never used (exact bucket) but would be -inf.
    log_scale = (ops.log(ops.cast(ops.maximum(distance, 1), "float32") / float(max_exact))
                 / ops.cast(ops.log(max_distance / max_exact), "float32"))
    large = max_exact + ops.cast(log_scale * (num_buckets - max_exact), distance.dtype)
    large = ops.minimum(large, num_buckets - 1)
    return buckets + ops.where(distance < max_exact, distance, large)


@register
class RelativePositionBias(keras.layers.Layer):
    """A learned scalar per (distance bucket, head), added to every attention score of a stack.

    Called with the query and key states ([B, T_q, H], [B, T_k, H]), or, through
    `bias`, with lengths. Returns [1, h, T_q, T_k].
    """

    def __init__(self, num_heads, bidirectional, num_buckets=32, max_distance=128, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.bidirectional = bidirectional
        self.num_buckets = num_buckets
        self.max_distance = max_distance

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_buckets, self.num_heads),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        self.built = True

    def bias(self, query_length, key_length, query_start=0):
        """Queries at positions query_start ..., keys at 0 ... (cached decoding: one new query)."""
        if not self.built:
            self.build()
        query_positions = ops.arange(query_length)[:, None] + query_start
        key_positions = ops.arange(key_length)[None, :]
        buckets = relative_position_bucket(key_positions - query_positions, self.bidirectional,
                                           self.num_buckets, self.max_distance)
        values = ops.take(self.embeddings, buckets, axis=0)  # [T_q, T_k, h]
        return ops.transpose(values, (2, 0, 1))[None]

    def call(self, query_states, key_states):
        return self.bias(ops.shape(query_states)[1], ops.shape(key_states)[1])

    def compute_output_shape(self, query_states_shape, key_states_shape):
        return (1, self.num_heads, query_states_shape[1], key_states_shape[1])

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads,
                "bidirectional": self.bidirectional, "num_buckets": self.num_buckets,
                "max_distance": self.max_distance}


@register
class T5Attention(keras.layers.Layer):
    """Multi-head attention without biases or 1/sqrt(d), plus an additive position bias.

    Self-attention attends over `x`; cross-attention over `source` (the
    encoder output), or over precomputed `key_values` ([B, 2, h, T_k, d]:
    keys then values, from `key_values(source)`). With `cache` (self-attention
    during decoding, [B, 2, h, T_max, d]) the new keys and values are written
    at `cache_update_index` and the layer returns `(outputs, cache)`.
    """

    def __init__(self, num_heads, hidden_dim, key_value_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.key_value_dim = key_value_dim
        self.dropout = dropout
        inner_dim = num_heads * key_value_dim

        def dense(units, stddev, name):
            return keras.layers.Dense(
                units, use_bias=False, dtype=self.dtype_policy, name=name,
                kernel_initializer=keras.initializers.RandomNormal(stddev=stddev))

        # Mesh TensorFlow's initialisation; the query's carries the 1/sqrt(d).
        self.query_dense = dense(inner_dim, (inner_dim * key_value_dim) ** -0.5, "query")
        self.key_dense = dense(inner_dim, inner_dim ** -0.5, "key")
        self.value_dense = dense(inner_dim, inner_dim ** -0.5, "value")
        self.output_dense = dense(hidden_dim, inner_dim ** -0.5, "attention_output")
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build((None, None, self.hidden_dim))
        self.output_dense.build((None, None, self.num_heads * self.key_value_dim))
        self.built = True

    def split_heads(self, x):
        """[B, T, h * d] -> [B, h, T, d]."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.key_value_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def key_values(self, source):
        """Keys and values of `source` [B, T, H] as [B, 2, h, T, d]."""
        return ops.stack([self.split_heads(self.key_dense(source)),
                          self.split_heads(self.value_dense(source))], axis=1)

    def call(self, x, source=None, key_values=None, position_bias=None, attention_mask=None,
             cache=None, cache_update_index=None, training=None):
        query = self.split_heads(self.query_dense(x))
        if key_values is None:
            key_values = self.key_values(x if source is None else source)
            if cache is not None:
                key_values = ops.slice_update(cache, [0, 0, 0, cache_update_index, 0], key_values)
        key, value = key_values[:, 0], key_values[:, 1]

        scores = ops.einsum("bhqd,bhkd->bhqk", query, key)
        if position_bias is not None:
            scores = scores + ops.cast(position_bias, scores.dtype)
        if attention_mask is not None:
            scores = ops.where(attention_mask, scores, masked_score(scores.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        outputs = ops.einsum("bhqk,bhkd->bhqd", weights, value)
        batch, length = ops.shape(outputs)[0], ops.shape(outputs)[2]
        outputs = ops.reshape(ops.transpose(outputs, (0, 2, 1, 3)),
                              (batch, length, self.num_heads * self.key_value_dim))
        outputs = self.output_dense(outputs)
        return outputs if cache is None else (outputs, key_values)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "key_value_dim": self.key_value_dim, "dropout": self.dropout}


@register
class T5Block(keras.layers.Layer):
    """One pre-norm layer: self-attention, cross-attention (decoder only), feed-forward.

    Each sublayer is x + dropout(sublayer(T5LayerNorm(x))). A decoder block
    masks causally and attends to the encoder output (`encoder_output`, or its
    precomputed `cross_key_values` during cached decoding).
    """

    def __init__(self, num_heads, hidden_dim, intermediate_dim, key_value_dim, is_decoder=False,
                 dropout=0.1, activation="relu", use_gated_activation=True,
                 layer_norm_epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.key_value_dim = key_value_dim
        self.is_decoder = is_decoder
        self.dropout = dropout
        self.activation = activation
        self.use_gated_activation = use_gated_activation
        self.layer_norm_epsilon = layer_norm_epsilon
        policy = self.dtype_policy

        def attention(name):
            return T5Attention(num_heads, hidden_dim, key_value_dim, dropout, dtype=policy, name=name)

        def norm(name):
            return T5LayerNorm(layer_norm_epsilon, dtype=policy, name=name)

        def dense(units, fan_in, name, activation=None):
            return keras.layers.Dense(
                units, use_bias=False, activation=activation, dtype=policy, name=name,
                kernel_initializer=keras.initializers.RandomNormal(stddev=fan_in ** -0.5))

        self.self_attention = attention("self_attention")
        self.self_attention_layer_norm = norm("self_attention_layer_norm")
        if is_decoder:
            self.cross_attention = attention("cross_attention")
            self.cross_attention_layer_norm = norm("cross_attention_layer_norm")
        self.feedforward_layer_norm = norm("feedforward_layer_norm")
        self.feedforward_intermediate_dense = dense(
            intermediate_dim, hidden_dim, "feedforward_intermediate_dense", get_activation(activation))
        self.feedforward_gate_dense = (
            dense(intermediate_dim, hidden_dim, "feedforward_gate_dense")
            if use_gated_activation else None)
        self.feedforward_output_dense = dense(hidden_dim, intermediate_dim, "feedforward_output_dense")
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=policy)

    def build(self, input_shape):
        hidden = (None, None, self.hidden_dim)
        for layer in (self.self_attention, self.self_attention_layer_norm,
                      self.feedforward_layer_norm, self.feedforward_intermediate_dense):
            layer.build(hidden)
        if self.is_decoder:
            self.cross_attention.build(hidden)
            self.cross_attention_layer_norm.build(hidden)
        if self.feedforward_gate_dense is not None:
            self.feedforward_gate_dense.build(hidden)
        self.feedforward_output_dense.build((None, None, self.intermediate_dim))
        self.built = True

    def call(self, x, position_bias, padding_mask=None, encoder_output=None,
             encoder_padding_mask=None, cross_key_values=None, cache=None,
             cache_update_index=None, training=None):
        mask = self_attention_mask(x, padding_mask, self.is_decoder, cache, cache_update_index)
        attended = self.self_attention(
            self.self_attention_layer_norm(x), position_bias=position_bias, attention_mask=mask,
            cache=cache, cache_update_index=cache_update_index, training=training)
        if cache is not None:
            attended, cache = attended
        x = x + self.dropout_layer(attended, training=training)

        if self.is_decoder:
            cross_mask = (None if encoder_padding_mask is None
                          else padding_attention_mask(encoder_padding_mask))
            attended = self.cross_attention(
                self.cross_attention_layer_norm(x), source=encoder_output,
                key_values=cross_key_values, attention_mask=cross_mask, training=training)
            x = x + self.dropout_layer(attended, training=training)

        h = self.feedforward_layer_norm(x)
        hidden = self.feedforward_intermediate_dense(h)
        if self.feedforward_gate_dense is not None:
            hidden = hidden * self.feedforward_gate_dense(h)
        hidden = self.dropout_layer(hidden, training=training)
        x = x + self.dropout_layer(self.feedforward_output_dense(hidden), training=training)
        return x if cache is None else (x, cache)

    def compute_output_shape(self, x_shape, *args, **kwargs):
        # Given, this spares Keras tracing `call` to infer it (the functional graph never caches).
        return x_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "key_value_dim": self.key_value_dim,
                "is_decoder": self.is_decoder, "dropout": self.dropout,
                "activation": self.activation, "use_gated_activation": self.use_gated_activation,
                "layer_norm_epsilon": self.layer_norm_epsilon}


@register
class T5Backbone(Backbone):
    """Shared token embedding, an encoder stack and a decoder stack, each ending in T5LayerNorm.

    Inputs (dict): `encoder_token_ids`, `encoder_padding_mask` [B, T_enc],
    `decoder_token_ids`, `decoder_padding_mask` [B, T_dec] (1 for real
    tokens). Outputs (dict): `encoder_sequence_output` [B, T_enc, H] and
    `decoder_sequence_output` [B, T_dec, H]. `key_value_dim` is the width of
    each attention head (default hidden_dim / num_heads);
    `tie_embedding_weights=False` gives the output layer its own matrix (T5
    v1.1, FLAN-T5). `relative_attention_buckets` and
    `relative_attention_max_distance` are Hugging Face's
    `relative_attention_num_buckets` and `relative_attention_max_distance`
    (keras-hub fixes them at 32 and 128).
    """

    family = "t5"
    hugging_face_converter = convert_t5

    # The paper's T5-small and T5-base (ReLU, not gated, tied, 32,128-token
    # SentencePiece vocabulary); "tiny" is for tests and CPU runs.
    sizes = {
        "tiny": dict(num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=128,
                     vocabulary_size=32128),
        "small": dict(num_layers=6, num_heads=8, hidden_dim=512, intermediate_dim=2048,
                      vocabulary_size=32128, use_gated_activation=False),
        # 222,903,552 parameters, as keras-hub's T5Backbone with this config.
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                     vocabulary_size=32128, use_gated_activation=False),
    }

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        key_value_dim=None,
        dropout=0.1,
        activation="relu",
        use_gated_activation=True,
        layer_norm_epsilon=1e-6,
        tie_embedding_weights=True,
        relative_attention_buckets=32,
        relative_attention_max_distance=128,
        dtype=None,
        **kwargs,
    ):
        key_value_dim = key_value_dim or hidden_dim // num_heads
        self.shared_token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, tie_weights=tie_embedding_weights,
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=1.0),
            dtype=dtype, name="token_embedding",
        )

        def stack(is_decoder, prefix):
            position_bias = RelativePositionBias(
                num_heads, bidirectional=not is_decoder, num_buckets=relative_attention_buckets,
                max_distance=relative_attention_max_distance, dtype=dtype,
                name=f"{prefix}_relative_position_bias")
            blocks = [
                T5Block(num_heads, hidden_dim, intermediate_dim, key_value_dim,
                        is_decoder=is_decoder, dropout=dropout, activation=activation,
                        use_gated_activation=use_gated_activation,
                        layer_norm_epsilon=layer_norm_epsilon, dtype=dtype,
                        name=f"transformer_{prefix}_layer_{i}")
                for i in range(num_layers)
            ]
            norm = T5LayerNorm(layer_norm_epsilon, dtype=dtype, name=f"{prefix}_output_layer_norm")
            return position_bias, blocks, norm

        (self.encoder_position_bias, self.encoder_transformer_layers,
         self.encoder_layer_norm) = stack(False, "encoder")
        (self.decoder_position_bias, self.decoder_transformer_layers,
         self.decoder_layer_norm) = stack(True, "decoder")
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=dtype, name="dropout")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ("encoder_token_ids", "encoder_padding_mask",
                               "decoder_token_ids", "decoder_padding_mask")}
        encoder_output = self.encode(inputs["encoder_token_ids"], inputs["encoder_padding_mask"])
        decoder_output = self.decode(inputs["decoder_token_ids"], inputs["decoder_padding_mask"],
                                     encoder_output, inputs["encoder_padding_mask"])
        super().__init__(
            inputs=inputs,
            outputs={"encoder_sequence_output": encoder_output,
                     "decoder_sequence_output": decoder_output},
            config=dict(
                vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads,
                hidden_dim=hidden_dim, intermediate_dim=intermediate_dim,
                key_value_dim=key_value_dim, dropout=dropout, activation=activation,
                use_gated_activation=use_gated_activation, layer_norm_epsilon=layer_norm_epsilon,
                tie_embedding_weights=tie_embedding_weights,
                relative_attention_buckets=relative_attention_buckets,
                relative_attention_max_distance=relative_attention_max_distance,
            ),
            dtype=dtype,
            **kwargs,
        )

    @property
    def token_embedding(self):
        return self.shared_token_embedding

    def encode(self, token_ids, padding_mask, training=None):
        """Encoder output [B, T_enc, H]."""
        x = self.dropout_layer(self.token_embedding(token_ids), training=training)
        position_bias = self.encoder_position_bias(x, x)  # computed once, used by every layer
        for block in self.encoder_transformer_layers:
            x = block(x, position_bias, padding_mask, training=training)
        return self.dropout_layer(self.encoder_layer_norm(x), training=training)

    def decode(self, token_ids, padding_mask, encoder_output, encoder_padding_mask, training=None):
        """Decoder output [B, T_dec, H], every position at once (training, teacher forcing)."""
        x = self.dropout_layer(self.token_embedding(token_ids), training=training)
        position_bias = self.decoder_position_bias(x, x)
        for block in self.decoder_transformer_layers:
            x = block(x, position_bias, padding_mask, encoder_output=encoder_output,
                      encoder_padding_mask=encoder_padding_mask, training=training)
        return self.dropout_layer(self.decoder_layer_norm(x), training=training)

    def cross_key_values(self, encoder_output):
        """Each decoder layer's cross-attention keys and values [B, L, 2, h, T_enc, d], once per input."""
        return ops.stack([block.cross_attention.key_values(encoder_output)
                          for block in self.decoder_transformer_layers], axis=1)

    def empty_cache(self, batch_size, max_length):
        """Zeros [B, L, 2, h, max_length, d] for the decoder's self-attention keys and values."""
        config = self.get_config()
        shape = (batch_size, config["num_layers"], 2, config["num_heads"], max_length,
                 config["key_value_dim"])
        return ops.zeros(shape, dtype=self.compute_dtype)

    def decode_with_cache(self, token_ids, cache, cache_update_index, cross_key_values,
                          encoder_padding_mask):
        """Run new decoder tokens (at cache_update_index ...) against the cache.

        Returns (decoder output [B, t, H], updated cache). No decoder padding
        mask: the causal mask already hides every position not yet written.
        """
        x = self.token_embedding(token_ids)
        position_bias = self.decoder_position_bias.bias(
            ops.shape(token_ids)[1], ops.shape(cache)[4], cache_update_index)
        layer_caches = []
        for i, block in enumerate(self.decoder_transformer_layers):
            x, layer_cache = block(x, position_bias, encoder_padding_mask=encoder_padding_mask,
                                   cross_key_values=cross_key_values[:, i], cache=cache[:, i],
                                   cache_update_index=cache_update_index)
            layer_caches.append(layer_cache)
        return self.decoder_layer_norm(x), ops.stack(layer_caches, axis=1)


def decoder_logits(backbone, decoder_output):
    """Next-token logits [B, T, V] from the decoder output.

    Tied embeddings: scaled by hidden_dim**-0.5 first, as in Mesh TensorFlow's
    T5 (keeps the logits' scale independent of the width); untied: the
    output layer's own matrix.
    """
    config = backbone.get_config()
    if config["tie_embedding_weights"]:
        decoder_output = decoder_output * config["hidden_dim"] ** -0.5
    return backbone.token_embedding(decoder_output, reverse=True)


@register
class T5Seq2SeqLM(WrapsBackbone, keras.Model):
    """Logits [B, T_dec, V] for every decoder position: position i predicts decoder token i + 1.

    Teacher forcing: the decoder reads the target shifted right behind the
    start token (`reference_impl.text_to_text.seq2seq_arrays`). Compile with
    `gpt.compile_causal_lm` (cross-entropy over real target tokens).
    """

    def __init__(self, backbone, **kwargs):
        self.backbone = backbone
        inputs = dict(backbone.input)
        logits = decoder_logits(backbone, backbone(inputs)["decoder_sequence_output"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)


def generate(seq2seq_lm, encoder_token_ids, encoder_padding_mask, max_length, start_token_id=0,
             end_token_id=1, pad_token_id=0, use_cache=True, **choice):
    """Decode up to `max_length` tokens per input, beginning with `start_token_id`.

    Args:
        seq2seq_lm: a `T5Seq2SeqLM`.
        encoder_token_ids, encoder_padding_mask: [B, T_enc] int arrays.
        max_length: decoder length, the start token included.
        start_token_id: the decoder's first token (T5: the pad id, 0).
        end_token_id: a row stops after writing it (T5: </s>, 1); later
            positions get `pad_token_id`.
        use_cache: the key/value cache (fast) or re-running the whole decoder
            prefix every step (slow; for checking the cache).
        **choice: `generation.choose_next_token` arguments (default greedy).

    Returns:
        (decoder token ids [B, max_length] int32 numpy, start token first;
        logits [B, steps, V] numpy, the scores each step chose from; steps is
        max_length - 1, or fewer when every row has ended).
    """
    backbone = seq2seq_lm.backbone
    encoder_token_ids = np.asarray(encoder_token_ids, "int32")
    encoder_padding_mask = np.asarray(encoder_padding_mask, "int32")
    batch = len(encoder_token_ids)
    if isinstance(choice.get("seed"), int):
        choice["seed"] = keras.random.SeedGenerator(choice["seed"])
    encoder_output = backbone.encode(encoder_token_ids, encoder_padding_mask)
    token_ids = np.full((batch, max_length), pad_token_id, "int32")
    token_ids[:, 0] = start_token_id
    finished = np.zeros(batch, bool)
    if use_cache:
        cache = backbone.empty_cache(batch, max_length)
        cross_key_values = backbone.cross_key_values(encoder_output)
    step_logits = []
    for index in range(1, max_length):
        if use_cache:
            hidden, cache = backbone.decode_with_cache(
                token_ids[:, index - 1:index], cache, index - 1, cross_key_values,
                encoder_padding_mask)
        else:
            hidden = backbone.decode(token_ids[:, :index], np.ones((batch, index), "int32"),
                                     encoder_output, encoder_padding_mask)
        logits = decoder_logits(backbone, hidden)[:, -1]
        chosen = ops.convert_to_numpy(choose_next_token(logits, **choice)).astype("int32")
        token_ids[:, index] = np.where(finished, pad_token_id, chosen)
        finished |= token_ids[:, index] == end_token_id
        step_logits.append(ops.convert_to_numpy(logits))
        if finished.all():
            break
    return token_ids, np.stack(step_logits, axis=1)
