"""ELMo (Peters et al., 2018): features mixed from a pair of LSTM language models.

Read top to bottom (the data pipeline, character and word ids, targets and
length-bucketed batches, is in `reference_impl.elmo_data`):
1. Characters: every token becomes 50 character ids (`elmo_data.character_ids`).
2. Token layer (`CharacterEncoder`): a character CNN (filter widths 1..7),
   max-pooled over characters, two highway layers and a linear projection,
   so any word, even an unseen one, gets a context-free vector.
3. `ELMoBiLM`: two separate two-layer LSTM language models over those
   vectors, one reading left to right, one right to left; the second layer of
   each adds its input back (a residual connection). Its output stacks the
   three ELMo layers: the token layer (duplicated to match the width of the
   forward+backward concatenation) and the two LSTM layers.
4. `ELMoPretrainer`: a softmax over a word vocabulary, shared by both
   directions: the forward LM predicts the next word, the backward LM the
   previous one. Full softmax for small vocabularies; for large ones, the
   sampled softmax bilm-tf trained with (`num_sampled`).
5. `ScalarMix` and `ELMoClassifier`: a task learns softmax-normalised weights
   over the three layers and a scale gamma, on top of the frozen biLM, and a
   small recurrent classifier reads the mixed vectors.

All model code is `keras.ops`; character and word ids are numpy.
"""

import keras
import numpy as np
from keras import ops

from reference_impl.backbone import WrapsBackbone
from reference_impl.elmo_data import (  # the data pipeline, re-exported for `from reference_impl.elmo import ...`
    MAX_CHARACTERS_PER_TOKEN,
    NUM_CHARACTERS,
    LengthBatches,
    build_word_vocabulary,
    character_ids,
    language_model_targets,
    split_words,
    word_ids,
)
from reference_impl.layers import register
from reference_impl.presets import Presets

# --------------------------------------------------------------------------
# 2. The token layer: character CNN, highway, projection
# --------------------------------------------------------------------------

#: bilm-tf's filters for the original ELMo: (width, count), 2048 in all.
FULL_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024))


def scaled_filters(divisor):
    """bilm-tf's filter counts divided by `divisor` (at least one filter per width)."""
    return tuple((width, max(1, count // divisor)) for width, count in FULL_FILTERS)


@register
class Highway(keras.layers.Layer):
    """y = g * relu(W_h x) + (1 - g) * x with gate g = sigmoid(W_g x): a learned skip."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        width = input_shape[-1]
        # bilm-tf's initialisers: N(0, 1/width) kernels keep the scale of x.
        kernel = keras.initializers.RandomNormal(stddev=float(np.sqrt(1.0 / width)))
        self.transform = keras.layers.Dense(width, activation="relu", kernel_initializer=kernel,
                                            name="transform")
        # A negative gate bias starts each layer close to the identity (carry).
        self.gate = keras.layers.Dense(width, activation="sigmoid", kernel_initializer=kernel,
                                       bias_initializer=keras.initializers.Constant(-2.0),
                                       name="gate")
        self.transform.build(input_shape)
        self.gate.build(input_shape)
        self.built = True

    def call(self, x):
        gate = self.gate(x)
        return gate * self.transform(x) + (1.0 - gate) * x


@register
class CharacterEncoder(keras.layers.Layer):
    """[B, T, 50] character ids -> [B, T, projection_dim] context-free token vectors."""

    def __init__(self, filters=FULL_FILTERS, character_dim=16, num_highway=2,
                 projection_dim=512, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(tuple(f) for f in filters)
        self.character_dim = character_dim
        self.num_highway = num_highway
        self.projection_dim = projection_dim
        # bilm-tf's initialisers: character embeddings in +-1, CNN kernels in
        # +-0.05, N(0, 1/n) projection. Keras's defaults (embeddings in
        # +-0.05, Glorot kernels) start the token vectors about 8x smaller.
        self.character_embedding = keras.layers.Embedding(
            NUM_CHARACTERS, character_dim, name="character_embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-1.0, 1.0))
        self.convolutions = [
            keras.layers.Conv1D(count, width, activation="relu", name=f"convolution_width_{width}",
                                kernel_initializer=keras.initializers.RandomUniform(-0.05, 0.05))
            for width, count in self.filters
        ]
        self.highways = [Highway(name=f"highway_{i}") for i in range(num_highway)]
        total = sum(count for _, count in self.filters)
        self.projection = keras.layers.Dense(
            projection_dim, name="projection",
            kernel_initializer=keras.initializers.RandomNormal(stddev=float(np.sqrt(1.0 / total))))

    def build(self, input_shape):
        self.character_embedding.build(input_shape)
        for convolution in self.convolutions:
            convolution.build((None, MAX_CHARACTERS_PER_TOKEN, self.character_dim))
        total = sum(count for _, count in self.filters)
        for highway in self.highways:
            highway.build((None, total))
        self.projection.build((None, total))
        self.built = True

    def call(self, character_ids):
        batch, length = ops.shape(character_ids)[0], ops.shape(character_ids)[1]
        characters = ops.reshape(character_ids, (-1, MAX_CHARACTERS_PER_TOKEN))
        x = self.max_pooled_filters(self.character_embedding(characters))
        for highway in self.highways:
            x = highway(x)
        x = self.projection(x)
        return ops.reshape(x, (batch, length, self.projection_dim))

    def max_pooled_filters(self, embedded_characters):
        """[N, 50, c] embedded characters -> [N, total filters]: each filter's best match."""
        # Each filter's strongest match anywhere in the word: max over positions.
        return ops.concatenate([ops.max(conv(embedded_characters), axis=1)
                                for conv in self.convolutions], axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(filters=[list(f) for f in self.filters], character_dim=self.character_dim,
                      num_highway=self.num_highway, projection_dim=self.projection_dim)
        return config


# --------------------------------------------------------------------------
# 3. The two LSTM language models
# --------------------------------------------------------------------------


@register
class ProjectedLSTMCell(keras.layers.Layer):
    """An LSTM cell whose output is projected down (LSTMP, Sak et al. 2014), as in bilm-tf.

    `units` memory cells, output h = clip(P (o * tanh(c))) of width
    `projection_dim`; the cell state is clipped to +-cell_clip. The forget
    gate gets +1, as in TensorFlow's LSTMCell that bilm-tf used.
    """

    def __init__(self, units, projection_dim, cell_clip=3.0, projection_clip=3.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.projection_dim = projection_dim
        self.cell_clip = cell_clip
        self.projection_clip = projection_clip
        self.state_size = [projection_dim, units]
        self.output_size = projection_dim

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 4 * self.units),
                                      initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.projection_dim, 4 * self.units),
                                                initializer="orthogonal", name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * self.units,), initializer="zeros", name="bias")
        self.projection = self.add_weight(shape=(self.units, self.projection_dim),
                                          initializer="glorot_uniform", name="projection")
        self.built = True

    def call(self, inputs, states):
        h, c = states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + self.bias
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f + 1.0) * c + ops.sigmoid(i) * ops.tanh(g)
        c = ops.clip(c, -self.cell_clip, self.cell_clip)
        h = ops.matmul(ops.sigmoid(o) * ops.tanh(c), self.projection)
        h = ops.clip(h, -self.projection_clip, self.projection_clip)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, projection_dim=self.projection_dim,
                      cell_clip=self.cell_clip, projection_clip=self.projection_clip)
        return config


@register
class LSTMLanguageModel(keras.layers.Layer):
    """`num_layers` LSTMP layers reading one direction; layers after the first add their input.

    backwards=True reads right to left (padding, on the right, is skipped by
    the mask, so each sentence starts from its own last token). Returns the
    list of layer outputs, each [B, T, projection_dim], in the original order.
    """

    def __init__(self, units, projection_dim, num_layers=2, dropout=0.1, backwards=False,
                 cell_clip=3.0, projection_clip=3.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.projection_dim = projection_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.backwards = backwards
        self.cell_clip = cell_clip
        self.projection_clip = projection_clip
        self.rnns = [
            keras.layers.RNN(
                ProjectedLSTMCell(units, projection_dim, cell_clip, projection_clip,
                                  name=f"cell_{i}"),
                return_sequences=True, go_backwards=backwards, name=f"lstm_{i}")
            for i in range(num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.supports_masking = True

    def build(self, input_shape):
        for rnn in self.rnns:
            rnn.build(tuple(input_shape[:-1]) + (self.projection_dim,))
        self.built = True

    def call(self, x, mask, training=None):
        outputs = []
        for i, rnn in enumerate(self.rnns):
            y = rnn(self.dropout_layer(x, training=training), mask=mask, training=training)
            if self.backwards:
                y = ops.flip(y, axis=1)  # go_backwards returns outputs last-first
            x = y + x if i > 0 else y
            outputs.append(x)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, projection_dim=self.projection_dim,
                      num_layers=self.num_layers, dropout=self.dropout,
                      backwards=self.backwards, cell_clip=self.cell_clip,
                      projection_clip=self.projection_clip)
        return config


def stack_elmo_layers(tokens, forward, backward):
    """Token layer [B, T, P] and per-layer LM outputs (lists of [B, T, P]) -> [B, 1 + L, T, 2P].

    The token layer is duplicated, [x; x], to the width of each LSTM layer's
    [forward; backward] concatenation.
    """
    layers = [ops.concatenate([tokens, tokens], axis=-1)]
    layers += [ops.concatenate([f, b], axis=-1) for f, b in zip(forward, backward)]
    return ops.stack(layers, axis=1)


@register
class ELMoBiLM(Presets, keras.Model):
    """Character encoder + forward and backward LSTM LMs.

    Input: `character_ids` [B, T, 50]. Outputs (dict):
    `elmo_layers` [B, 3, T, 2P]: the token layer [x; x], then each LSTM
    layer's [forward; backward]; `forward_output` and `backward_output`
    [B, T, P]: the top layer of each LM, which the softmax reads;
    `token_mask` [B, T]: real tokens.
    """

    family = "elmo"

    sizes = {
        # A few thousand parameters per part: for tests.
        "tiny": dict(filters=scaled_filters(32), projection_dim=32, lstm_units=64),
        # Trains on a CPU in minutes.
        "small": dict(filters=scaled_filters(8), projection_dim=128, lstm_units=512),
        # The original ELMo (bilm-tf's "Original" options): 93.6M parameters.
        "full": dict(filters=FULL_FILTERS, projection_dim=512, lstm_units=4096),
    }

    def __init__(self, filters=FULL_FILTERS, character_dim=16, num_highway=2,
                 projection_dim=512, lstm_units=4096, num_lstm_layers=2, dropout=0.1,
                 cell_clip=3.0, projection_clip=3.0, **kwargs):
        self.config = dict(
            filters=[list(f) for f in filters], character_dim=character_dim,
            num_highway=num_highway, projection_dim=projection_dim, lstm_units=lstm_units,
            num_lstm_layers=num_lstm_layers, dropout=dropout, cell_clip=cell_clip,
            projection_clip=projection_clip)
        self.character_encoder = CharacterEncoder(filters, character_dim, num_highway,
                                                  projection_dim, name="character_encoder")

        def language_model(backwards, name):
            return LSTMLanguageModel(lstm_units, projection_dim, num_lstm_layers, dropout,
                                     backwards, cell_clip, projection_clip, name=name)

        self.forward_lm = language_model(False, "forward_lm")
        self.backward_lm = language_model(True, "backward_lm")

        ids = keras.Input(shape=(None, MAX_CHARACTERS_PER_TOKEN), dtype="int32",
                          name="character_ids")
        mask = ops.any(ids != 0, axis=-1)
        tokens = self.character_encoder(ids)
        forward = self.forward_lm(tokens, mask=mask)
        backward = self.backward_lm(tokens, mask=mask)
        super().__init__(
            inputs={"character_ids": ids},
            outputs={"elmo_layers": stack_elmo_layers(tokens, forward, backward), "forward_output": forward[-1],
                     "backward_output": backward[-1], "token_mask": mask},
            **kwargs)

    def get_config(self):
        return {"name": self.name, **self.config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def log_uniform_probabilities(ids, vocabulary_size):
    """Q(id) of the log-uniform (Zipfian) sampler: log((id + 2) / (id + 1)) / log(V + 1).

    It suits a word vocabulary sorted by frequency (`build_word_vocabulary`).
    """
    ids = ops.cast(ids, "float32")
    return ops.log((ids + 2.0) / (ids + 1.0)) / float(np.log(vocabulary_size + 1.0))


def sample_log_uniform(num_sampled, vocabulary_size, seed=None):
    """`num_sampled` word ids drawn with replacement from the log-uniform distribution."""
    uniform = keras.random.uniform((num_sampled,), seed=seed)
    ids = ops.floor(ops.exp(uniform * float(np.log(vocabulary_size + 1.0)))) - 1.0
    return ops.cast(ops.clip(ids, 0, vocabulary_size - 1), "int32")


def sampled_softmax_loss(hidden, targets, kernel, bias, sampled_ids, vocabulary_size):
    """Per-position cross-entropy [B, T] of a softmax over the true word and the sampled words.

    As bilm-tf trains its biLM (Jean et al., 2015): every position shares the
    `sampled_ids` [S]; each logit has the log of its expected count under the
    sampler (S * Q(id)) subtracted, so the estimate corrects for sampling
    frequent words more often; a sampled id equal to the position's true word
    (an "accidental hit") is removed. `kernel` [P, V] and `bias` [V] are the
    softmax layer's weights.
    """
    num_sampled = ops.shape(sampled_ids)[0]
    true_weights = ops.take(ops.transpose(kernel), targets, axis=0)  # [B, T, P]
    true_logits = ops.sum(hidden * true_weights, axis=-1) + ops.take(bias, targets)
    true_logits -= ops.log(ops.cast(num_sampled, "float32") * log_uniform_probabilities(targets, vocabulary_size))
    sampled_logits = ops.matmul(hidden, ops.take(kernel, sampled_ids, axis=1)) + ops.take(bias, sampled_ids)
    sampled_logits -= ops.log(ops.cast(num_sampled, "float32")
                              * log_uniform_probabilities(sampled_ids, vocabulary_size))
    hits = ops.expand_dims(targets, -1) == ops.reshape(sampled_ids, (1, 1, -1))
    sampled_logits = ops.where(hits, ops.full_like(sampled_logits, -1e9), sampled_logits)
    logits = ops.concatenate([ops.expand_dims(true_logits, -1), sampled_logits], axis=-1)
    return -ops.log_softmax(logits, axis=-1)[..., 0]


@register
class ELMoPretrainer(WrapsBackbone, keras.Model):
    """Both LMs' next-word predictions through one shared softmax over a word vocabulary.

    Full softmax (`num_sampled=None`, for small vocabularies): outputs
    `forward_logits` (position t predicts word t + 1) and `backward_logits`
    (position t predicts word t - 1), each [B, T, V]; train with
    `compile_elmo_pretraining` and targets and weights from
    `language_model_targets`.

    Sampled softmax (`num_sampled=S`, for large vocabularies): outputs the
    top LSTM states `forward_output` and `backward_output` [B, T, P], never
    the [B, T, V] logits; training scores each position against its true
    word and S sampled words (`sampled_softmax_loss`), evaluation with the
    full softmax. Same targets and weights, same compile function.
    """

    wrapped_argument = "bilm"
    config_arguments = ("vocabulary_size", "num_sampled", "seed")

    def __init__(self, bilm, vocabulary_size, num_sampled=None, seed=None, **kwargs):
        self.bilm = bilm
        self.vocabulary_size = vocabulary_size
        self.num_sampled = num_sampled
        self.seed = seed
        self.softmax = keras.layers.Dense(vocabulary_size, name="softmax")
        inputs = dict(bilm.input)
        outputs = bilm(inputs)
        if num_sampled:
            self.softmax.build((None, outputs["forward_output"].shape[-1]))
            self.seed_generator = keras.random.SeedGenerator(seed)
            outputs = {"forward_output": outputs["forward_output"], "backward_output": outputs["backward_output"]}
        else:
            outputs = {"forward_logits": self.softmax(outputs["forward_output"]),
                       "backward_logits": self.softmax(outputs["backward_output"])}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def set_unigram_softmax_bias(self, word_ids_):
        """Start the softmax bias at the log frequency of each word in `word_ids_` (add-one smoothed).

        The untrained model then already predicts the unigram distribution.
        From the zero bias, the first steps learn word frequencies through the
        biLM instead: every token vector moves towards one shared direction,
        and the frozen features carry almost nothing about the word.
        """
        word_ids_ = np.asarray(word_ids_)
        counts = np.bincount(word_ids_[word_ids_ != 0], minlength=self.vocabulary_size) + 1.0
        self.softmax.bias.assign(np.log(counts / counts.sum()).astype("float32"))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Sampled softmax: the mean over real target words of both directions' losses, as bilm-tf."""
        if not self.num_sampled:
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        if training:
            sampled_ids = sample_log_uniform(self.num_sampled, self.vocabulary_size, self.seed_generator)
        losses = []
        for direction in ("forward", "backward"):
            targets = ops.cast(y[f"{direction}_logits"], "int32")
            weights = ops.cast(sample_weight[f"{direction}_logits"], "float32")
            hidden = y_pred[f"{direction}_output"]
            if training:
                per_position = sampled_softmax_loss(hidden, targets, self.softmax.kernel, self.softmax.bias,
                                                    sampled_ids, self.vocabulary_size)
            else:
                per_position = keras.losses.sparse_categorical_crossentropy(
                    targets, self.softmax(hidden), from_logits=True)
            losses.append(ops.sum(per_position * weights) / ops.maximum(ops.sum(weights), 1.0))
        return 0.5 * (losses[0] + losses[1])


def compile_elmo_pretraining(pretrainer, learning_rate=2e-3, jit_compile="auto"):
    """Mean cross-entropy of both directions (bilm-tf averages the two losses)."""
    if pretrainer.num_sampled:  # the loss is the model's own (`compute_loss`)
        pretrainer.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=10.0), jit_compile=jit_compile)
        return pretrainer
    # Averaged over real target words, not over all positions.
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")
    pretrainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate, clipnorm=10.0),
        loss={"forward_logits": loss, "backward_logits": loss},
        loss_weights={"forward_logits": 0.5, "backward_logits": 0.5},
        jit_compile=jit_compile)
    return pretrainer


# --------------------------------------------------------------------------
# 5. Using ELMo in a task
# --------------------------------------------------------------------------


@register
class ScalarMix(keras.layers.Layer):
    """gamma * sum_j softmax(s)_j * layer_j over [B, L, T, D] -> [B, T, D].

    s starts at zero (an even mix) and gamma at one; both are the task's to learn.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def build(self, input_shape):
        self.layer_weights = self.add_weight(shape=(input_shape[1],), initializer="zeros",
                                             name="layer_weights")
        self.gamma = self.add_weight(shape=(), initializer="ones", name="gamma")
        self.built = True

    def mixing_weights(self):
        return ops.softmax(self.layer_weights)

    def call(self, layers):
        weights = ops.reshape(self.mixing_weights(), (1, -1, 1, 1))
        return self.gamma * ops.sum(weights * layers, axis=1)


@register
class ELMoClassifier(WrapsBackbone, keras.Model):
    """Frozen biLM -> trainable scalar mix -> BatchNorm -> bidirectional LSTM -> linear classifier.

    Only the mix, the LSTM and the output layer train: the biLM's weights are
    frozen, as in the ELMo paper's downstream models.
    """

    wrapped_argument = "bilm"
    config_arguments = ("num_classes", "hidden_units", "dropout")

    def __init__(self, bilm, num_classes, hidden_units=64, dropout=0.3, **kwargs):
        bilm.trainable = False
        self.bilm = bilm
        self.num_classes = num_classes
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.scalar_mix = ScalarMix(name="scalar_mix")
        inputs = dict(bilm.input)
        outputs = bilm(inputs)
        x = self.scalar_mix(outputs["elmo_layers"])
        # Each feature standardised over the batch's real tokens. Whatever
        # direction all tokens share (most of the vector, for a briefly
        # pretrained biLM) would survive a per-token LayerNorm; batch
        # statistics remove it, so the words' differences remain.
        x = keras.layers.BatchNormalization(name="mix_batch_norm")(x, mask=outputs["token_mask"])
        x = keras.layers.Dropout(dropout)(x)
        x = keras.layers.Bidirectional(keras.layers.LSTM(hidden_units), name="encoder")(
            x, mask=outputs["token_mask"])
        x = keras.layers.Dropout(dropout)(x)
        logits = keras.layers.Dense(num_classes, name="classifier_head")(x)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)
