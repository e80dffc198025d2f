"""Layers shared by every model in the kit.

Read top to bottom: attention as plain math, the masks it uses, multi-head
attention, one Transformer block (post-LayerNorm for encoders such as BERT,
pre-LayerNorm for GPT-style decoders), the embeddings and the tied masked-LM
head. Only `keras.ops` is used, so each layer runs under TensorFlow, JAX and
PyTorch alike.

Shapes: B batch, T sequence length, H hidden width, h heads, d = H / h.
"""

import math

import keras
from keras import ops

SERIALIZATION_PACKAGE = "reference_impl"


def register(cls):
    """Register a layer or model so `keras.saving.load_model` finds it in safe mode."""
    return keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)(cls)


# --------------------------------------------------------------------------
# Activations by name, so configs hold strings and checkpoints stay exact.
# --------------------------------------------------------------------------

ACTIVATIONS = {
    # keras-hub's BERT, ALBERT and ELECTRA use the tanh approximation of GELU;
    # Hugging Face checkpoints with hidden_act="gelu" use the exact erf form.
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
}


def get_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {name!r}. Use one of {sorted(ACTIVATIONS)}."
        )
    return ACTIVATIONS[name]


def bert_initializer(stddev=0.02):
    """Truncated normal with the BERT paper's standard deviation."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


# --------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------


def masked_score(dtype):
    """A score low enough that softmax gives it zero weight.

    Finite rather than -inf: a row whose keys are all masked (a padding query)
    then gets uniform weights instead of NaN, which would poison gradients.
    """
    return -3.0e4 if dtype == "float16" else -1.0e9


def scaled_dot_product_attention(query, key, value, mask=None, dropout=None):
    """softmax(Q K^T / sqrt(d)) V, written out as plain math for teaching.

    Args:
        query: [B, h, T_q, d]; key and value: [B, h, T_k, d].
        mask: bool, broadcastable to [B, h, T_q, T_k]; True where the query may
            attend to the key. Masked scores are replaced *before* the softmax
            so that each row's weights still sum to one over the visible keys.
        dropout: optional callable applied to the attention weights.

    Returns:
        (outputs [B, h, T_q, d], attention weights [B, h, T_q, T_k]).
    """
    head_dim = ops.shape(query)[-1]
    scores = ops.einsum("bhqd,bhkd->bhqk", query, key) / math.sqrt(head_dim)
    if mask is not None:
        scores = ops.where(mask, scores, masked_score(scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    if dropout is not None:
        weights = dropout(weights)
    return ops.einsum("bhqk,bhkd->bhqd", weights, value), weights


def fused_attention(query, key, value, mask=None):
    """The same function through `keras.ops.dot_product_attention`.

    Each backend may dispatch this to a fused kernel (flash attention on a GPU),
    which never materialises the [T_q, T_k] weights. Inputs as for
    `scaled_dot_product_attention`; returns the outputs only.
    """
    # keras.ops.dot_product_attention takes [B, T, h, d].
    query, key, value = (ops.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))
    head_dim = ops.shape(query)[-1]
    outputs = ops.dot_product_attention(
        query, key, value, mask=mask, scale=1.0 / math.sqrt(head_dim)
    )
    return ops.transpose(outputs, (0, 2, 1, 3))


def padding_attention_mask(padding_mask):
    """[B, T_k] (True for real tokens) -> [B, 1, 1, T_k]: every query sees real keys."""
    return ops.expand_dims(ops.expand_dims(ops.cast(padding_mask, "bool"), 1), 1)


def causal_attention_mask(query_length, key_length, offset=0):
    """[T_q, T_k] lower-triangular: query i sees key j only if j <= i + offset.

    `offset` is the position of the first query, so the same mask serves
    training (offset 0, T_q = T_k) and cached decoding one token at a time.
    """
    query_positions = ops.arange(query_length)[:, None] + offset
    key_positions = ops.arange(key_length)[None, :]
    return key_positions <= query_positions


def self_attention_mask(x, padding_mask, use_causal_mask, cache=None, cache_update_index=None):
    """The padding mask combined with the causal mask (decoders), as bool [B|1, 1, T_q, T_k].

    With a cache ([B, 2, h, T_max, d]) the queries `x` sit at
    `cache_update_index` ... and the keys span the whole cache.
    """
    mask = None if padding_mask is None else padding_attention_mask(padding_mask)
    if use_causal_mask:
        query_length = ops.shape(x)[1]
        key_length = query_length if cache is None else ops.shape(cache)[3]
        offset = 0 if cache is None else cache_update_index
        causal = causal_attention_mask(query_length, key_length, offset)[None, None]
        mask = causal if mask is None else ops.logical_and(mask, causal)
    return mask


@register
class MultiHeadAttention(keras.layers.Layer):
    """Projects to h heads, attends in each, and projects back.

    With `cache` ([B, 2, h, T_max, d]: keys then values) the layer writes the
    new keys and values at `cache_update_index` and attends over the whole
    cache; it then returns `(outputs, cache)`.
    """

    def __init__(
        self,
        num_heads,
        hidden_dim,
        dropout=0.0,
        use_fused_attention=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads})."
            )
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // num_heads
        self.dropout = dropout
        self.use_fused_attention = use_fused_attention
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def dense(name):
            return keras.layers.Dense(
                hidden_dim,
                kernel_initializer=keras.initializers.get(kernel_initializer),
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("attention_output")
        self.attention_dropout = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(input_shape)
        self.output_dense.build(input_shape[:-1] + (self.hidden_dim,))
        self.built = True

    def split_heads(self, x):
        """[B, T, H] -> [B, h, T, d]."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def merge_heads(self, x):
        """[B, h, T, d] -> [B, T, H]."""
        batch, length = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, self.hidden_dim))

    def call(self, x, attention_mask=None, cache=None, cache_update_index=None, training=None):
        query = self.split_heads(self.query_dense(x))
        key = self.split_heads(self.key_dense(x))
        value = self.split_heads(self.value_dense(x))

        if cache is not None:
            start = [0, 0, cache_update_index, 0]
            key = ops.slice_update(cache[:, 0], start, key)
            value = ops.slice_update(cache[:, 1], start, value)
            cache = ops.stack([key, value], axis=1)

        # Attention dropout needs the weights, which the fused kernel never forms.
        needs_weights = training and self.dropout > 0
        if self.use_fused_attention and not needs_weights:
            outputs = fused_attention(query, key, value, attention_mask)
        else:
            dropout = lambda w: self.attention_dropout(w, training=training)
            outputs, _ = scaled_dot_product_attention(query, key, value, attention_mask, dropout)

        outputs = self.output_dense(self.merge_heads(outputs))
        return outputs if cache is None else (outputs, cache)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            dropout=self.dropout,
            use_fused_attention=self.use_fused_attention,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


# --------------------------------------------------------------------------
# The Transformer block
# --------------------------------------------------------------------------


@register
class TransformerBlock(keras.layers.Layer):
    """Self-attention then a two-layer feed-forward network, each with a residual.

    normalize_first=False is the original post-LayerNorm block of BERT and its
    successors: x = LN(x + sublayer(x)). normalize_first=True is GPT-2's
    pre-LayerNorm block: x = x + sublayer(LN(x)), which trains stably when deep.
    use_causal_mask=True stops each position attending to later ones (decoders).
    """

    def __init__(
        self,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.0,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        normalize_first=False,
        use_causal_mask=False,
        use_fused_attention=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_first = normalize_first
        self.use_causal_mask = use_causal_mask
        self.use_fused_attention = use_fused_attention
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def initializer():
            return keras.initializers.get(kernel_initializer)

        policy = self.dtype_policy
        self.self_attention = MultiHeadAttention(
            num_heads,
            hidden_dim,
            dropout=dropout,
            use_fused_attention=use_fused_attention,
            kernel_initializer=initializer(),
            dtype=policy,
            name="self_attention",
        )
        self.self_attention_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.self_attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="self_attention_layer_norm"
        )
        self.feedforward_intermediate_dense = keras.layers.Dense(
            intermediate_dim,
            activation=get_activation(activation),
            kernel_initializer=initializer(),
            dtype=policy,
            name="feedforward_intermediate_dense",
        )
        self.feedforward_output_dense = keras.layers.Dense(
            hidden_dim, kernel_initializer=initializer(), dtype=policy,
            name="feedforward_output_dense",
        )
        self.feedforward_dropout = keras.layers.Dropout(dropout, dtype=policy)
        self.feedforward_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="feedforward_layer_norm"
        )

    def build(self, input_shape):
        self.self_attention.build(input_shape)
        self.self_attention_layer_norm.build(input_shape)
        self.feedforward_intermediate_dense.build(input_shape)
        self.feedforward_output_dense.build(input_shape[:-1] + (self.intermediate_dim,))
        self.feedforward_layer_norm.build(input_shape)
        self.built = True

    def attention_mask(self, x, padding_mask, cache, cache_update_index):
        return self_attention_mask(x, padding_mask, self.use_causal_mask, cache, cache_update_index)

    def call(self, x, padding_mask=None, cache=None, cache_update_index=None, training=None):
        mask = self.attention_mask(x, padding_mask, cache, cache_update_index)

        residual = x
        if self.normalize_first:
            x = self.self_attention_layer_norm(x)
        x = self.self_attention(
            x, attention_mask=mask, cache=cache,
            cache_update_index=cache_update_index, training=training,
        )
        if cache is not None:
            x, cache = x
        x = residual + self.self_attention_dropout(x, training=training)
        if not self.normalize_first:
            x = self.self_attention_layer_norm(x)

        residual = x
        if self.normalize_first:
            x = self.feedforward_layer_norm(x)
        x = self.feedforward_output_dense(self.feedforward_intermediate_dense(x))
        x = residual + self.feedforward_dropout(x, training=training)
        if not self.normalize_first:
            x = self.feedforward_layer_norm(x)
        return x if cache is None else (x, cache)

    def compute_output_shape(self, x_shape, padding_mask_shape=None, cache_shape=None,
                             cache_update_index_shape=None):
        # Given, this spares Keras tracing `call` to infer it: models build several times faster.
        return x_shape if cache_shape is None else (x_shape, cache_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            normalize_first=self.normalize_first,
            use_causal_mask=self.use_causal_mask,
            use_fused_attention=self.use_fused_attention,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


# --------------------------------------------------------------------------
# Embeddings and the masked-LM head
# --------------------------------------------------------------------------


@register
class Embeddings(keras.layers.Layer):
    """Token + learned position (+ segment) embeddings, then LayerNorm and dropout.

    The token table is a `ReversibleEmbedding`, so output heads can reuse it
    transposed (`token_embedding(x, reverse=True)`): tied input and output
    embeddings, as in BERT's MLM head and GPT's LM head.
    num_segments=0 drops the segment table (RoBERTa, GPT); normalize=False drops
    the LayerNorm (GPT-2 normalises inside each block instead).
    """

    def __init__(
        self,
        vocabulary_size,
        max_sequence_length,
        embedding_dim,
        num_segments=0,
        dropout=0.0,
        normalize=True,
        layer_norm_epsilon=1e-12,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size
        self.max_sequence_length = max_sequence_length
        self.embedding_dim = embedding_dim
        self.num_segments = num_segments
        self.dropout = dropout
        self.normalize = normalize
        self.layer_norm_epsilon = layer_norm_epsilon
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or bert_initializer()
        )

        def initializer():
            return keras.initializers.get(keras.initializers.serialize(self.embeddings_initializer))

        policy = self.dtype_policy
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size, embedding_dim, embeddings_initializer=initializer(),
            dtype=policy, name="token_embedding",
        )
        self.position_embedding = keras.layers.Embedding(
            max_sequence_length, embedding_dim, embeddings_initializer=initializer(),
            dtype=policy, name="position_embedding",
        )
        self.segment_embedding = (
            keras.layers.Embedding(
                num_segments, embedding_dim, embeddings_initializer=initializer(),
                dtype=policy, name="segment_embedding",
            )
            if num_segments
            else None
        )
        self.layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=policy, name="embeddings_layer_norm"
            )
            if normalize
            else None
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=policy)

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build(input_shape)
        if self.segment_embedding is not None:
            self.segment_embedding.build(input_shape)
        if self.layer_norm is not None:
            self.layer_norm.build(tuple(input_shape) + (self.embedding_dim,))
        self.built = True

    def call(self, token_ids, segment_ids=None, start_index=0, training=None):
        positions = ops.arange(ops.shape(token_ids)[1]) + start_index
        x = self.token_embedding(token_ids) + self.position_embedding(positions)[None]
        if self.segment_embedding is not None:
            if segment_ids is None:
                segment_ids = ops.zeros_like(token_ids)
            x = x + self.segment_embedding(segment_ids)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return self.embeddings_dropout(x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            max_sequence_length=self.max_sequence_length,
            embedding_dim=self.embedding_dim,
            num_segments=self.num_segments,
            dropout=self.dropout,
            normalize=self.normalize,
            layer_norm_epsilon=self.layer_norm_epsilon,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config


@register
class MaskedLMHead(keras.layers.Layer):
    """Predicts the original token at each masked position.

    Gathers the hidden states at `mask_positions` (only those are scored, which
    saves the full [T, V] projection), applies Dense + activation + LayerNorm,
    then multiplies by the transposed token embedding (tied weights) and adds a
    per-token bias. Built by the pretraining models, which pass their backbone's
    token embedding.
    """

    def __init__(self, token_embedding, activation="gelu", layer_norm_epsilon=1e-12,
                 kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        policy = self.dtype_policy
        self.intermediate_dense = keras.layers.Dense(
            token_embedding.output_dim,
            activation=get_activation(activation),
            kernel_initializer=kernel_initializer or bert_initializer(),
            dtype=policy,
            name="intermediate_dense",
        )
        self.intermediate_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="intermediate_layer_norm"
        )

    def build(self, input_shape):
        width = input_shape[-1]
        self.intermediate_dense.build((None, None, width))
        self.intermediate_layer_norm.build((None, None, self.token_embedding.output_dim))
        self.output_bias = self.add_weight(
            shape=(self.token_embedding.input_dim,), initializer="zeros", name="output_bias"
        )
        self.built = True

    def call(self, hidden_states, mask_positions):
        x = ops.take_along_axis(hidden_states, ops.expand_dims(mask_positions, -1), axis=1)
        x = self.intermediate_layer_norm(self.intermediate_dense(x))
        return self.token_embedding(x, reverse=True) + self.output_bias
