"""XLNet (Yang et al., 2019): permutation language modelling with two-stream relative attention.

BERT predicts masked tokens independently of each other, from a corrupted
input ([MASK] never occurs in fine-tuning). A left-to-right LM has neither
problem but sees one side only. XLNet keeps autoregression and gets both
sides: it samples a *factorization order* z (a permutation of the
positions) and predicts each token from the tokens before it in z, wherever
they sit in the text. Positions and the text stay as they are; only the
attention masks follow z. Over many orders every token is predicted from
every side.

To predict the token at position t, the model must know *where* it
predicts (position t) but not *what* is there (x_t): hence two streams
through the same layers (same weights):

- the content stream h, as in Transformer-XL: position i reads the tokens
  at or before i in z, *itself included*; it is what later positions read;
- the query stream g, which starts from one learned vector w at every
  position (`mask_emb`) and reads the content stream at positions
  *strictly* before i in z: it knows its position (relative attention) and
  its context, never its own token. Its last layer predicts x_t.

Target mapping. Only the last tokens of z are predicted (partial
prediction: they have the most context; the paper predicts 1/K of them, K =
6 or 7). `target_mapping` [B, P, T] is one-hot: row p marks the position of
the p-th prediction. The query stream holds P vectors, not T; inside each
attention layer a query vector is placed at its target's position
(`einsum("bpnd,bpt->btnd")`), so that its relative distances to the keys
are its target's, then taken back (`einsum("btnd,bpt->bpnd")`). The output
is one vector per prediction, [B, P, H], and labels are [B, P].

`XLNetBackbone` reads the content stream only, with no permutation (every
position sees every real token), which is how XLNet is fine-tuned and what
keras-hub's `XLNetBackbone` computes (same argument, input and weight
names). `XLNetBackbone.two_stream` runs both streams;
`XLNetPretrainer` adds the tied LM head; `permutation_lm_inputs` samples
orders, masks and targets. No memory here: Transformer-XL's memory
(`reference_impl.transformer_xl`) works the same way and is left out.
"""

import keras
import numpy as np
from keras import ops

from reference_impl.backbone import Backbone, WrapsBackbone
from reference_impl.checkpoints import convert_xlnet
from reference_impl.layers import register
from reference_impl.transformer_xl import (
    RelativePositionEncoding,
    RelativeTransformerBlock,
    relative_initializer,
)


@register
class QueryStreamStart(keras.layers.Layer):
    """The query stream's input: one learned vector w (`mask_emb`) at each of P predictions."""

    def __init__(self, hidden_dim, kernel_initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.kernel_initializer_range = kernel_initializer_range

    def build(self, input_shape):
        self.mask_emb = self.add_weight(
            shape=(1, 1, self.hidden_dim), initializer=relative_initializer(self.kernel_initializer_range),
            name="mask_emb")
        self.built = True

    def call(self, target_mapping):
        batch, predictions = ops.shape(target_mapping)[0], ops.shape(target_mapping)[1]
        return ops.broadcast_to(self.mask_emb, (batch, predictions, self.hidden_dim))

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim,
                "kernel_initializer_range": self.kernel_initializer_range}


@register
class XLNetAttentionMasks(keras.layers.Layer):
    """padding_mask, segment_ids [B, T] -> (content mask, segment matrix), both bool [B, T, T].

    Content mask: query i reads every real key, and a padding query reads
    itself (keras-hub's and XLNet's rule; no row is empty). Segment matrix:
    True where query and key lie in different segments.
    """

    def call(self, padding_mask, segment_ids):
        length = ops.shape(padding_mask)[1]
        real_keys = ops.cast(padding_mask, "bool")[:, None, :]
        content_mask = ops.logical_or(real_keys, ops.eye(length, dtype="bool")[None])
        segment_matrix = ops.not_equal(segment_ids[:, :, None], segment_ids[:, None, :])
        return content_mask, segment_matrix

    def compute_output_shape(self, padding_mask_shape, segment_ids_shape):
        shape = tuple(padding_mask_shape) + (padding_mask_shape[-1],)
        return shape, shape


@register
class XLNetBackbone(Backbone):
    """Word embeddings, `num_layers` post-LN relative-attention blocks with XLNet's segment term.

    Inputs (dict): `token_ids`, `segment_ids`, `padding_mask` [B, T]. Output:
    the content stream's last layer [B, T, H] (a single tensor, as in
    keras-hub). Arguments are keras-hub's. `base` is the paper's XLNet-Base
    (cased, 32,000 SentencePiece pieces).
    """

    family = "xlnet"
    hugging_face_converter = convert_xlnet

    sizes = {
        "tiny": dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256),
        "base": dict(num_layers=12, num_heads=12, hidden_dim=768, intermediate_dim=3072,
                     vocabulary_size=32000),
    }

    def __init__(self, vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim,
                 dropout=0.0, activation="gelu", kernel_initializer_range=0.02,
                 bias_initializer="zeros", dtype=None, **kwargs):
        self.embeddings = keras.layers.ReversibleEmbedding(
            vocabulary_size, hidden_dim, embeddings_initializer=relative_initializer(kernel_initializer_range),
            dtype=dtype, name="word_embedding")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.query_stream_start = QueryStreamStart(hidden_dim, kernel_initializer_range, dtype=dtype,
                                                   name="query_stream_start")
        self.position_encoding = RelativePositionEncoding(hidden_dim, dropout, dtype=dtype,
                                                          name="relative_position_encoding")
        self.attention_masks = XLNetAttentionMasks(dtype=dtype, name="attention_masks")
        self.transformer_layers = [
            RelativeTransformerBlock(
                num_heads, hidden_dim, intermediate_dim, dropout=dropout, activation=activation,
                layer_norm_epsilon=1e-12, use_segment_term=True,
                kernel_initializer_range=kernel_initializer_range, bias_initializer=bias_initializer,
                dtype=dtype, name=f"xlnet_encoder_{i}")
            for i in range(num_layers)
        ]
        self.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ("token_ids", "segment_ids", "padding_mask")}
        content = self.embeddings_dropout(self.embeddings(inputs["token_ids"]))
        # Built here so that it counts among the weights, as in keras-hub; only `two_stream` reads it.
        self.query_stream_start.build(None)
        position_encoding = self.position_encoding(content)
        content_mask, segment_matrix = self.attention_masks(inputs["padding_mask"], inputs["segment_ids"])
        for block in self.transformer_layers:
            content = block(content, position_encoding, content_mask, segment_matrix=segment_matrix)
        super().__init__(
            inputs=inputs, outputs=self.output_dropout(content),
            config=dict(vocabulary_size=vocabulary_size, num_layers=num_layers, num_heads=num_heads,
                        hidden_dim=hidden_dim, intermediate_dim=intermediate_dim, dropout=dropout,
                        activation=activation, kernel_initializer_range=kernel_initializer_range,
                        bias_initializer=bias_initializer),
            dtype=dtype, **kwargs)

    @property
    def token_embedding(self):
        return self.embeddings

    def two_stream(self, inputs, permutation_mask, target_mapping, training=None):
        """Both streams under a factorization order: (content [B, T, H], query [B, P, H]).

        permutation_mask: bool [B, T, T], True where position j comes before
        position i in the order (query i may read j's content). The content
        stream also reads itself; both read real tokens only.
        target_mapping: [B, P, T] one-hot, the position of each prediction.
        """
        real_keys = ops.cast(inputs["padding_mask"], "bool")[:, None, :]
        permutation_mask = ops.logical_and(ops.cast(permutation_mask, "bool"), real_keys)
        _, segment_matrix = self.attention_masks(inputs["padding_mask"], inputs["segment_ids"])
        length = ops.shape(permutation_mask)[-1]
        content_mask = ops.logical_or(permutation_mask, ops.eye(length, dtype="bool")[None])
        target_mapping = ops.cast(target_mapping, self.compute_dtype)

        content = self.embeddings_dropout(self.embeddings(inputs["token_ids"]), training=training)
        query = self.embeddings_dropout(self.query_stream_start(target_mapping), training=training)
        position_encoding = self.position_encoding(content, training=training)
        for block in self.transformer_layers:
            content, query = block(content, position_encoding, content_mask, segment_matrix=segment_matrix,
                                   query_stream=query, query_attention_mask=permutation_mask,
                                   target_mapping=target_mapping, training=training)
        return (self.output_dropout(content, training=training),
                self.output_dropout(query, training=training))


@register
class XLNetPretrainer(WrapsBackbone, keras.Model):
    """Permutation LM: logits [B, P, V] for the P targets, from the query stream (tied output layer).

    Inputs: the backbone's, plus `permutation_mask` and `target_mapping`
    (`permutation_lm_inputs` makes all of them, with labels and weights).
    Compile with `gpt.compile_causal_lm` (cross-entropy over weighted targets).
    """

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, inputs, training=None):
        _, query = self.backbone.two_stream(inputs, inputs["permutation_mask"], inputs["target_mapping"],
                                            training=training)
        return self.backbone.token_embedding(query, reverse=True)


def permutation_lm_inputs(token_ids, padding_mask, num_predict, rng, segment_ids=None):
    """Sample a factorization order per row; return (inputs, labels [B, P], weights [B, P]).

    The last `num_predict` real positions of each order are the targets
    (fewer when a row is shorter: the missing targets get weight 0).
    As in XLNet's code, the other real tokens are plain context: they come
    first in every order, read each other freely, and every target reads
    them. The targets follow in a random order: target t reads the targets
    before it, never itself or the ones after it.

    permutation_mask[b, i, j] is True where j comes before i: rank(j) <
    rank(i), with rank -1 for context tokens and 0..P-1 for targets.
    """
    token_ids, padding_mask = np.asarray(token_ids), np.asarray(padding_mask)
    batch, length = token_ids.shape
    rank = np.full((batch, length), -1)
    target_mapping = np.zeros((batch, num_predict, length), "float32")
    labels = np.zeros((batch, num_predict), "int32")
    weights = np.zeros((batch, num_predict), "float32")
    for row in range(batch):
        real = np.flatnonzero(padding_mask[row])
        targets = rng.permutation(real)[:num_predict]
        rank[row, targets] = np.arange(len(targets))
        target_mapping[row, np.arange(len(targets)), targets] = 1.0
        labels[row, :len(targets)] = token_ids[row, targets]
        weights[row, :len(targets)] = 1.0
    permutation_mask = rank[:, None, :] < rank[:, :, None]
    # Context reads context both ways (rank -1 against -1).
    permutation_mask |= (rank[:, None, :] == -1) & (rank[:, :, None] == -1)
    inputs = {"token_ids": token_ids.astype("int32"), "padding_mask": padding_mask.astype("int32"),
              "segment_ids": (np.zeros_like(token_ids) if segment_ids is None else segment_ids).astype("int32"),
              "permutation_mask": permutation_mask, "target_mapping": target_mapping}
    return inputs, labels, weights
