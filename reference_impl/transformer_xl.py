"""Transformer-XL (Dai et al., 2019): relative positional attention and segment-level recurrence.

A vanilla decoder trained on fixed-length segments sees nothing before its
segment, and the first tokens of each segment are predicted almost blind.
Transformer-XL keeps the hidden states of the previous segment as a
*memory*: every layer attends over `[memory; current segment]`, so the
context grows by one segment per layer (about L x M tokens for L layers and
memory length M). The memory is held under `stop_gradient`: training costs
one segment's backward pass, however long the context.

Reusing states breaks absolute position embeddings (position 0 of this
segment and of the memory would look the same), so attention is scored by
*relative* position. For a query at position i and a key at position j
(Dai et al., section 3.3):

    score(i, j) = (q_i + u) . k_j            content: what the key says,
                + (q_i + v) . W_r r_(i-j)    position: how far back it is,

with r the sinusoidal encoding of the distance i - j (no learned position
table) and u, v two learned bias vectors per head, the same for every query
position ("global"): u scores how interesting a key's content is in itself,
v how interesting a distance is. XLNet (`reference_impl.xlnet`) uses the same
attention, with a third, segment term.

`RelativeAttention` and `RelativeTransformerBlock` are shared with XLNet;
`TransformerXLBackbone` stacks causal blocks; `TransformerXLCausalLM` trains
on consecutive segments of a long text, carrying the memory from one to the
next; `segment_perplexity` evaluates with or without memory.

Shapes: B batch, T segment length, M memory length, K = M + T keys,
H hidden width, n heads, d = H / n.
"""

import math

import keras
import numpy as np
from keras import ops

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.layers import causal_attention_mask, get_activation, masked_score, register


def relative_initializer(stddev=0.02):
    """Truncated normal, as in XLNet and keras-hub's XLNet."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


# --------------------------------------------------------------------------
# Relative positions
# --------------------------------------------------------------------------


def sinusoidal_encoding(positions, hidden_dim):
    """[L] positions -> [L, H]: [sin(p f_k) | cos(p f_k)], f_k = 1 / 10000^(2k / H)."""
    frequencies = 1.0 / (10000.0 ** (ops.arange(0, hidden_dim, 2, dtype="float32") / hidden_dim))
    angles = ops.einsum("i,d->id", ops.cast(positions, "float32"), frequencies)
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)


def relative_position_encoding(query_length, key_length, hidden_dim):
    """The encodings of every query-key distance, [K + T, H].

    Row p encodes the distance K - p, from K (row 0) down to -T + 1: all
    distances from a query of the segment to a key of `[memory; segment]`
    (negative ones, keys after the query, are needed only without a causal
    mask, as in XLNet). The distance is a signed position, not a table index,
    so the same weights serve any length.
    """
    distances = ops.arange(key_length, -query_length, -1)
    return sinusoidal_encoding(distances, hidden_dim)


def relative_shift(position_scores, key_length):
    """[B, n, T, K + T] scores of each query against each distance -> [B, n, T, K] against each key.

    Query i sits at position M + i (after the M memory positions), key j at
    position j: their distance M + i - j is row K - (M + i - j) = T - i + j of
    `relative_position_encoding`. Transformer-XL's code does this with a
    pad-and-reshape trick; gathering the rows says the same thing plainly.
    """
    batch, heads, query_length = (ops.shape(position_scores)[i] for i in range(3))
    rows = query_length - ops.arange(query_length)[:, None] + ops.arange(key_length)[None, :]
    rows = ops.broadcast_to(rows[None, None], (batch, heads, query_length, key_length))
    return ops.take_along_axis(position_scores, rows, axis=-1)


@register
class RelativePositionEncoding(keras.layers.Layer):
    """`relative_position_encoding` for a segment (and its memory), with dropout."""

    def __init__(self, hidden_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.encoding_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def call(self, content, memory=None, training=None):
        query_length = ops.shape(content)[1]
        key_length = query_length + (0 if memory is None else ops.shape(memory)[1])
        encoding = relative_position_encoding(query_length, key_length, self.hidden_dim)
        return self.encoding_dropout(ops.cast(encoding, self.compute_dtype), training=training)

    def compute_output_shape(self, content_shape, memory_shape=None):
        return (None, self.hidden_dim)

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim, "dropout": self.dropout}


# --------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------


@register
class RelativeAttention(keras.layers.Layer):
    """Multi-head attention scored by content and relative position (and, in XLNet, segment).

    score(i, j) = [(q_i + u) . k_j + (q_i + v) . W_r r_(i-j) (+ (q_i + b) . e_(s_i != s_j))] / sqrt(d)

    u = `content_attention_bias`, v = `positional_attention_bias`, W_r =
    `encoding` (projects the sinusoid to each head). With
    `use_segment_term`, XLNet's relative segment encoding is added: a learned
    vector e_0 or e_1 per head for "same segment" or "different segment", with
    its own bias b (`segment_attention_bias`). Projections have no biases,
    as in Transformer-XL and XLNet; names are keras-hub's.

    `call(content, position_encoding, attention_mask, memory=...)`: keys
    and values come from `[memory; content]`, queries from `content`.
    `query_stream`: XLNet's second stream (see `reference_impl.xlnet`),
    attending to the same keys with its own mask; then the layer returns
    `(content_output, query_output)`.
    """

    def __init__(self, num_heads, hidden_dim, dropout=0.0, use_segment_term=False,
                 kernel_initializer_range=0.02, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads}).")
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // num_heads
        self.dropout = dropout
        self.use_segment_term = use_segment_term
        self.kernel_initializer_range = kernel_initializer_range
        self.bias_initializer = keras.initializers.get(bias_initializer)

        def projection(name, equation="btH,Hnd->btnd", output_shape=(None, num_heads, self.head_dim)):
            return keras.layers.EinsumDense(
                equation, output_shape=output_shape,
                kernel_initializer=relative_initializer(kernel_initializer_range),
                dtype=self.dtype_policy, name=name,
            )

        self.query_dense = projection("query")
        self.key_dense = projection("key")
        self.value_dense = projection("value")
        self.encoding_dense = projection("encoding")
        self.output_dense = projection("attention_output", "btnd,Hnd->btH", (None, hidden_dim))
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, content_shape):
        for dense in (self.query_dense, self.key_dense, self.value_dense, self.encoding_dense):
            dense.build(content_shape)
        self.output_dense.build(tuple(content_shape[:-1]) + (self.num_heads, self.head_dim))
        per_head = (self.num_heads, self.head_dim)

        def bias(name):
            return self.add_weight(shape=per_head, initializer=self.bias_initializer, name=name)

        self.content_attention_bias = bias("content_attention_bias")        # u
        self.positional_attention_bias = bias("positional_attention_bias")  # v
        if self.use_segment_term:
            self.segment_attention_bias = bias("segment_attention_bias")
            self.segment_encoding = self.add_weight(
                shape=(2, *per_head), initializer=relative_initializer(self.kernel_initializer_range),
                name="segment_encoding")
        self.built = True

    def attend(self, query, key, value, position, attention_mask, segment_matrix, training):
        """Queries [B, T, n, d] against keys and values [B, K, n, d] -> [B, T, n, d] (before the output projection)."""
        key_length = ops.shape(key)[1]
        scores = ops.einsum("bind,bjnd->bnij", query + self.content_attention_bias, key)
        position_scores = ops.einsum("bind,pnd->bnip", query + self.positional_attention_bias, position)
        scores = scores + relative_shift(position_scores, key_length)
        if segment_matrix is not None:
            # [B, n, T, 2]: each query's score for "same segment" (0) and "different segment" (1).
            segment_scores = ops.einsum("bind,snd->bnis", query + self.segment_attention_bias,
                                        self.segment_encoding)
            scores = scores + ops.where(segment_matrix[:, None], segment_scores[..., 1:],
                                        segment_scores[..., :1])
        scores = scores / math.sqrt(self.head_dim)
        scores = ops.where(attention_mask[:, None], scores, masked_score(scores.dtype))
        weights = self.attention_dropout(ops.softmax(scores, axis=-1), training=training)
        return ops.einsum("bnij,bjnd->bind", weights, value)

    def call(self, content, position_encoding, attention_mask, memory=None, segment_matrix=None,
             query_stream=None, query_attention_mask=None, target_mapping=None, training=None):
        """Masks are bool, broadcastable to [B, T, K], True where query i may read key j.

        segment_matrix: bool [B, T, K], True where query and key are in
        different segments. target_mapping [B, P, T]: see
        `reference_impl.xlnet` (query stream rows -> positions).
        """
        context = content if memory is None else ops.concatenate([memory, content], axis=1)
        key, value = self.key_dense(context), self.value_dense(context)
        position = self.encoding_dense(position_encoding[None])[0]  # [K + T, n, d]

        def attend(query, mask):
            return self.attend(query, key, value, position, mask, segment_matrix, training)

        content_output = self.output_dense(attend(self.query_dense(content), attention_mask))
        if query_stream is None:
            return content_output
        query = self.query_dense(query_stream)
        if target_mapping is None:
            return content_output, self.output_dense(attend(query, query_attention_mask))
        # Place each prediction's query at its target's position, attend, and take it back.
        query = ops.einsum("bpnd,bpt->btnd", query, target_mapping)
        query_output = ops.einsum("btnd,bpt->bpnd", attend(query, query_attention_mask), target_mapping)
        return content_output, self.output_dense(query_output)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "dropout": self.dropout, "use_segment_term": self.use_segment_term,
                "kernel_initializer_range": self.kernel_initializer_range,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


@register
class RelativeTransformerBlock(keras.layers.Layer):
    """Relative attention, then a feed-forward network; each adds a residual and a LayerNorm (post-LN).

    The block of Transformer-XL (ReLU) and XLNet (GELU). use_causal_mask=True
    (Transformer-XL) lets query i read memory and segment keys up to its own
    position, M + i. A second stream (`query_stream`, XLNet) goes through the
    same weights and comes back as a second output.
    """

    def __init__(self, num_heads, hidden_dim, intermediate_dim, dropout=0.0, activation="relu",
                 layer_norm_epsilon=1e-12, use_causal_mask=False, use_segment_term=False,
                 kernel_initializer_range=0.02, bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.use_causal_mask = use_causal_mask
        self.use_segment_term = use_segment_term
        self.kernel_initializer_range = kernel_initializer_range
        self.bias_initializer = keras.initializers.get(bias_initializer)

        policy = self.dtype_policy
        self.relative_attention = RelativeAttention(
            num_heads, hidden_dim, dropout=dropout, use_segment_term=use_segment_term,
            kernel_initializer_range=kernel_initializer_range,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            dtype=policy, name="rel_attn")
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="layer_norm_rel_attn")

        def dense(units, name):
            return keras.layers.Dense(units, kernel_initializer=relative_initializer(kernel_initializer_range),
                                      bias_initializer=keras.initializers.serialize(self.bias_initializer),
                                      dtype=policy, name=name)

        self.feedforward_intermediate_dense = dense(intermediate_dim, "feedforward_intermediate_dense")
        self.feedforward_output_dense = dense(hidden_dim, "feedforward_output_dense")
        self.feedforward_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="layer_norm_ff")

    def build(self, content_shape):
        self.relative_attention.build(content_shape)
        self.attention_layer_norm.build(content_shape)
        self.feedforward_intermediate_dense.build(content_shape)
        self.feedforward_output_dense.build(tuple(content_shape[:-1]) + (self.intermediate_dim,))
        self.feedforward_layer_norm.build(content_shape)
        self.built = True

    def feedforward(self, attended, residual, training):
        x = self.attention_layer_norm(residual + self.attention_dropout(attended, training=training))
        hidden = get_activation(self.activation)(self.feedforward_intermediate_dense(x))
        hidden = self.feedforward_dropout(hidden, training=training)
        hidden = self.feedforward_dropout(self.feedforward_output_dense(hidden), training=training)
        return self.feedforward_layer_norm(x + hidden)

    def call(self, content, position_encoding, attention_mask=None, memory=None, segment_matrix=None,
             query_stream=None, query_attention_mask=None, target_mapping=None, training=None):
        query_length = ops.shape(content)[1]
        memory_length = 0 if memory is None else ops.shape(memory)[1]
        if self.use_causal_mask:
            causal = causal_attention_mask(query_length, memory_length + query_length, memory_length)[None]
            attention_mask = causal if attention_mask is None else ops.logical_and(attention_mask, causal)
        if attention_mask is None:
            attention_mask = ops.ones((1, 1, 1), "bool")
        attended = self.relative_attention(
            content, position_encoding, attention_mask, memory=memory, segment_matrix=segment_matrix,
            query_stream=query_stream, query_attention_mask=query_attention_mask,
            target_mapping=target_mapping, training=training)
        if query_stream is None:
            return self.feedforward(attended, content, training)
        content_attended, query_attended = attended
        return (self.feedforward(content_attended, content, training),
                self.feedforward(query_attended, query_stream, training))

    def compute_output_shape(self, content_shape, *args, **kwargs):
        # Given, this spares Keras tracing `call` (whose masks need concrete lengths) in functional models.
        return content_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim, "dropout": self.dropout,
                "activation": self.activation, "layer_norm_epsilon": self.layer_norm_epsilon,
                "use_causal_mask": self.use_causal_mask, "use_segment_term": self.use_segment_term,
                "kernel_initializer_range": self.kernel_initializer_range,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer)}


# --------------------------------------------------------------------------
# The decoder with a memory
# --------------------------------------------------------------------------


@register
class TransformerXLBackbone(Backbone):
    """Token embeddings and `num_layers` causal relative-attention blocks, with a segment memory.

    Called as a Keras model (inputs `token_ids` and `padding_mask`, output the
    sequence output [B, T, H]) it reads one segment with no memory.
    `call_with_memory(token_ids, memory)` reads the next segment of a text
    after the previous ones, and returns the memory for the one after.

    The memory of layer l holds the last `memory_length` hidden states that
    *entered* layer l (layer 0: token embeddings), so layer l's keys come
    from the states that make its queries. There are no position
    embeddings: order enters only through the relative scores. The language
    model's output layer is the token table (tied). Named sizes: `tiny`,
    `small`, and `base`, the paper's enwik8 base model (12 layers, d=512,
    character-level, 41M parameters; memory 512 in training).
    """

    family = "transformer_xl"

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256, memory_length=32),
        "small": dict(num_layers=4, num_heads=4, hidden_dim=256, intermediate_dim=1024, memory_length=128),
        "base": dict(num_layers=12, num_heads=8, hidden_dim=512, intermediate_dim=2048,
                     memory_length=512, vocabulary_size=204),
    }

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 memory_length=128, dropout=0.1, activation="relu", layer_norm_epsilon=1e-5,
                 kernel_initializer_range=0.02, dtype=None, **kwargs):
        self.memory_length = memory_length
        self.embeddings = keras.layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=relative_initializer(kernel_initializer_range),
            dtype=dtype, name="token_embedding")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.position_encoding = RelativePositionEncoding(hidden_dim, dropout, dtype=dtype,
                                                          name="relative_position_encoding")
        self.transformer_layers = [
            RelativeTransformerBlock(
                num_heads, hidden_dim, intermediate_dim, dropout=dropout, activation=activation,
                layer_norm_epsilon=layer_norm_epsilon, use_causal_mask=True,
                kernel_initializer_range=kernel_initializer_range, dtype=dtype,
                name=f"transformer_layer_{i}")
            for i in range(num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")

        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        # Padding keys are hidden (right padding: every query still reads the first token).
        keys_mask = ops.expand_dims(ops.cast(padding_mask, "bool"), 1)
        embedded = self.embeddings_dropout(self.embeddings(token_ids))
        sequence_output, _ = self.run_layers(embedded, [None] * num_layers, keys_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=sequence_output,
            config=dict(vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads,
                        hidden_dim=hidden_dim, intermediate_dim=intermediate_dim,
                        memory_length=memory_length, dropout=dropout, activation=activation,
                        layer_norm_epsilon=layer_norm_epsilon,
                        kernel_initializer_range=kernel_initializer_range),
            dtype=dtype, **kwargs)

    @property
    def token_embedding(self):
        return self.embeddings

    def run_layers(self, x, memory, attention_mask=None, training=None):
        """Embedded segment [B, T, H] -> (sequence output, the hidden states that entered each layer)."""
        position_encoding = self.position_encoding(x, memory[0], training=training)
        layer_inputs = []
        for block, layer_memory in zip(self.transformer_layers, memory, strict=True):
            layer_inputs.append(x)
            x = block(x, position_encoding, attention_mask, memory=layer_memory, training=training)
        return self.output_dropout(x, training=training), layer_inputs

    def call_with_memory(self, token_ids, memory=None, training=None):
        """Read segment `token_ids` [B, T] after `memory` (None: a text's first segment).

        Returns (sequence output [B, T, H], the next memory: one [B, <= M, H]
        tensor per layer). The next memory is `[memory; segment]`'s last M
        states under stop_gradient: the next segment's loss reads these states
        but never trains the computation that made them.
        """
        if memory is None:
            memory = [None] * len(self.transformer_layers)
        embedded = self.embeddings_dropout(self.embeddings(token_ids), training=training)
        sequence_output, layer_inputs = self.run_layers(embedded, memory, training=training)
        return sequence_output, [self.next_memory(old, new) for old, new in zip(memory, layer_inputs)]

    def next_memory(self, memory, layer_input):
        """stop_gradient of the last `memory_length` states of [memory; layer_input]; None when M = 0."""
        if self.memory_length == 0:
            return None
        states = layer_input if memory is None else ops.concatenate([memory, layer_input], axis=1)
        return ops.stop_gradient(states[:, -self.memory_length:])


@register
class TransformerXLCausalLM(WrapsBackbone, keras.Model):
    """Next-token logits over `segments_per_example` consecutive segments, carrying the memory.

    Input `token_ids` [B, S x T] is cut into S segments of `segment_length` T,
    read in order with `call_with_memory`: segment s attends to the memory
    left by segment s - 1 (the first of each example starts with none).
    Output: logits [B, S x T, V] (position i predicts token i + 1; train with
    `gpt.compile_causal_lm` on `segment_batches`). The gradient of each
    segment's loss stops at its memory, as in the paper's training.
    """

    config_arguments = ("segment_length",)

    def __init__(self, backbone, segment_length, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.segment_length = segment_length

    def call(self, inputs, training=None):
        token_ids = inputs["token_ids"] if isinstance(inputs, dict) else inputs
        length = token_ids.shape[1]
        if length is None or length % self.segment_length:
            raise ValueError(f"token_ids must hold whole segments: length {length} is not a multiple of "
                             f"segment_length {self.segment_length}.")
        memory, outputs = None, []
        for start in range(0, length, self.segment_length):
            hidden, memory = self.backbone.call_with_memory(
                token_ids[:, start:start + self.segment_length], memory, training=training)
            outputs.append(hidden)
        return self.backbone.token_embedding(ops.concatenate(outputs, axis=1), reverse=True)


def contiguous_streams(token_ids, num_streams):
    """Cut one long text [N] into `num_streams` contiguous rows [num_streams, N // num_streams].

    Row r continues where it left off at every step, so consecutive segments
    of a row are consecutive text (the batching of Transformer-XL's data
    iterator); the ragged tail is dropped.
    """
    token_ids = np.asarray(token_ids)
    length = len(token_ids) // num_streams
    return token_ids[: length * num_streams].reshape(num_streams, length)


def segment_batches(token_ids, segment_length, segments_per_example):
    """(x, y) for `TransformerXLCausalLM`: windows of `segments_per_example` segments of a long text.

    Each example holds S x T inputs and the S x T next tokens; windows do
    not overlap.
    """
    token_ids = np.asarray(token_ids)
    window = segment_length * segments_per_example
    count = (len(token_ids) - 1) // window
    starts = np.arange(count) * window
    x = np.stack([token_ids[s:s + window] for s in starts]).astype("int32")
    y = np.stack([token_ids[s + 1:s + window + 1] for s in starts]).astype("int32")
    return {"token_ids": x}, y


def segment_perplexity(backbone, token_ids, segment_length, use_memory=True, num_streams=4,
                       positions=slice(None)):
    """Perplexity of next-token prediction over a long text, read segment by segment.

    With `use_memory` each segment attends to the previous segments' states
    (up to the backbone's `memory_length`); without, each segment is read
    alone, as a vanilla decoder trained on fixed segments would. Same
    segments, same targets either way: only the memory differs. `positions`
    scores only those positions of each segment (e.g. slice(0, 8): the
    first tokens, which without memory have almost no context).
    """
    streams = contiguous_streams(token_ids, num_streams)
    num_segments = (streams.shape[1] - 1) // segment_length
    memory, total, count = None, 0.0, 0
    for s in range(num_segments):
        start = s * segment_length
        inputs = streams[:, start:start + segment_length].astype("int32")
        targets = streams[:, start + 1:start + segment_length + 1]
        hidden, next_memory = backbone.call_with_memory(inputs, memory if use_memory else None)
        memory = next_memory
        logits = backbone.token_embedding(hidden, reverse=True)
        losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        total += float(ops.sum(losses[:, positions]))
        count += targets[:, positions].size
    return math.exp(total / count)
