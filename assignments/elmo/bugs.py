"""Known bugs (plausible student mistakes) and alternative correct solutions for the ELMo assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
"""

BUGS = {
    "highway": [
        ("gate and carry swapped: (1 - g) * relu(...) + g * x",
         "gate * transform + (1.0 - gate) * x", "(1.0 - gate) * transform + gate * x"),
        ("no relu on the transform", "ops.relu(ops.matmul(x, transform_kernel) + transform_bias)",
         "ops.matmul(x, transform_kernel) + transform_bias"),
        ("gate kernel used transposed (x @ W.T instead of x @ W)",
         "ops.matmul(x, gate_kernel)", "ops.matmul(x, ops.transpose(gate_kernel))"),
        ("gate bias left out", "ops.matmul(x, gate_kernel) + gate_bias", "ops.matmul(x, gate_kernel)"),
        ("tanh gate instead of sigmoid", "ops.sigmoid(", "ops.tanh("),
        ("plain residual relu(...) + x, no gate",
         "return gate * transform + (1.0 - gate) * x", "return transform + x"),
        ("gate computed from the transform instead of the input", "ops.matmul(x, gate_kernel)",
         "ops.matmul(transform, gate_kernel)"),
        ("carry of the transform instead of the input: g * t + (1 - g) * t", "(1.0 - gate) * x",
         "(1.0 - gate) * transform"),
        ("gate only on the carry: t + (1 - g) * x", "return gate * transform + ", "return transform + "),
    ],
    "character_cnn": [
        ("mean over positions instead of max",
         "ops.max(filter_outputs, axis=1)", "ops.mean(filter_outputs, axis=1)"),
        ("no relu before the max", "ops.relu(filter_outputs + bias)", "filter_outputs + bias"),
        ("max over the filters instead of the positions", "ops.max(filter_outputs, axis=1)",
         "ops.max(filter_outputs, axis=-1)"),
        ("kernel flipped along the window (a true convolution)", "ops.conv(embedded_characters, kernel,",
         "ops.conv(embedded_characters, ops.flip(kernel, axis=0),"),
        ("bias left out", "ops.relu(filter_outputs + bias)", "ops.relu(filter_outputs)"),
        ("sum over positions instead of max",
         "ops.max(filter_outputs, axis=1)", "ops.sum(filter_outputs, axis=1)"),
        ("only the first window kept", "ops.max(filter_outputs, axis=1)", "filter_outputs[:, 0]"),
        ("tanh instead of relu", "ops.relu(filter_outputs + bias)", "ops.tanh(filter_outputs + bias)"),
        ("windows taken with a stride of 2", "strides=1", "strides=2"),
    ],
    "scalar_mix": [
        ("layer weights used without the softmax",
         "weights = ops.softmax(layer_weights)", "weights = layer_weights"),
        ("gamma left out", "return gamma * ops.einsum", "return ops.einsum"),
        ("token layer zero-padded instead of duplicated",
         "ops.concatenate([token_vectors, token_vectors], axis=-1)",
         "ops.concatenate([token_vectors, ops.zeros_like(token_vectors)], axis=-1)"),
        ("[backward; forward] instead of [forward; backward]",
         "ops.concatenate([forward_layers, backward_layers], axis=-1)",
         "ops.concatenate([backward_layers, forward_layers], axis=-1)"),
        ("weights divided by their sum instead of a softmax", "ops.softmax(layer_weights)",
         "layer_weights / ops.sum(layer_weights)"),
        ("layer weights ignored (a plain mean)", "ops.softmax(layer_weights)",
         "ops.softmax(ops.zeros_like(layer_weights))"),
        ("token layer left out",
         "ops.concatenate([token_layer[:, None], lstm_layers], axis=1)", "lstm_layers"),
        ("gamma inside the softmax: softmax(gamma * s)",
         "weights = ops.softmax(layer_weights)\n    return gamma * ops.einsum",
         "weights = ops.softmax(gamma * layer_weights)\n    return ops.einsum"),
        ("weighted layers averaged (divided by the number of layers)",
         'ops.einsum("l,blti->bti", weights, layers)', 'ops.einsum("l,blti->bti", weights, layers) / ops.shape(layers)[1]'),
    ],
    "language_model_targets": [
        ("forward and backward targets swapped",
         "return forward, backward, forward_weights, backward_weights",
         "return backward, forward, backward_weights, forward_weights"),
        ("backward targets at padding positions (the last word predicted from padding)",
         "    backward = backward * ops.cast(word_ids != 0, backward.dtype)\n", ""),
        ("targets wrapped around (roll) instead of shifted in zeros",
         "ops.concatenate([word_ids[:, 1:], padding], axis=1)",
         "ops.roll(word_ids, -1, axis=1)"),
        ("weights mark real input words instead of real targets", 'ops.cast(forward != 0, "float32")',
         'ops.cast(word_ids != 0, "float32")'),
        ("forward LM predicts the word it reads", "ops.concatenate([word_ids[:, 1:], padding], axis=1)",
         "word_ids"),
        ("every position weighted",
         'ops.cast(backward != 0, "float32")', 'ops.ones_like(backward, "float32")'),
        ("weights returned as integers", 'forward_weights = ops.cast(forward != 0, "float32")',
         'forward_weights = ops.cast(forward != 0, "int32")'),
        ("targets returned as floats", "padding = ops.zeros_like(word_ids[:, :1])",
         'padding = ops.zeros_like(word_ids[:, :1], dtype="float32")'),
        ("backward targets shifted like the forward ones (both predict the next word)",
         "backward = ops.concatenate([padding, word_ids[:, :-1]], axis=1)",
         "backward = ops.concatenate([word_ids[:, 1:], padding], axis=1)"),
    ],
    "CharacterEncoder": [
        ("highway layers skipped",
         "        for transform, gate in self.highways:\n"
         "            x = highway(x, transform.kernel, transform.bias, gate.kernel, gate.bias)\n", ""),
        ("each highway's transform and gate layers swapped",
         "highway(x, transform.kernel, transform.bias, gate.kernel, gate.bias)",
         "highway(x, gate.kernel, gate.bias, transform.kernel, transform.bias)"),
        ("only the first filter width used", "for c in self.convolutions]", "for c in self.convolutions[:1]]"),
        ("the first highway layer's weights reused for every highway layer",
         "for transform, gate in self.highways:\n            x = highway(",
         "for transform, gate in [self.highways[0]] * len(self.highways):\n            x = highway("),
        ("a relu after the projection",
         "return ops.reshape(self.projection(x)", "return ops.reshape(ops.relu(self.projection(x))"),
        ("tokens reshaped back in [tokens, batch] order",
         "return ops.reshape(self.projection(x), (batch, length, self.projection_dim))",
         "return ops.transpose(ops.reshape(self.projection(x), (length, batch, self.projection_dim)), (1, 0, 2))"),
        ("character ids shifted by one before the lookup (ELMo's ids already include the shift)",
         "ops.reshape(character_ids, (-1, characters))", "ops.reshape(character_ids, (-1, characters)) - 1"),
        ("projection applied before the highway layers",
         "        for transform, gate in self.highways:\n"
         "            x = highway(x, transform.kernel, transform.bias, gate.kernel, gate.bias)\n"
         "        return ops.reshape(self.projection(x), (batch, length, self.projection_dim))",
         "        x = self.projection(x)\n"
         "        for transform, gate in self.highways:\n"
         "            x = highway(x, transform.kernel, transform.bias, gate.kernel, gate.bias)\n"
         "        return ops.reshape(x, (batch, length, self.projection_dim))"),
        ("the pooled filters taken through numpy (no gradient reaches the table or the convolutions)",
         "x = ops.concatenate([character_cnn(embedded, c.kernel, c.bias) for c in self.convolutions], axis=-1)",
         "x = ops.convert_to_numpy(ops.concatenate([character_cnn(embedded, c.kernel, c.bias) "
         "for c in self.convolutions], axis=-1))"),
    ],
}

CORRECT = {
    "highway": {
        "numpy with a hand-written sigmoid": '''
def highway(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    transform = np.maximum(x @ transform_kernel + transform_bias, 0.0)
    gate = 1.0 / (1.0 + np.exp(-(x @ gate_kernel + gate_bias)))
    return gate * transform + (1.0 - gate) * x
''',
        "einsum and the form x + g * (t - x)": '''
def highway(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    transform = ops.maximum(ops.einsum("...i,io->...o", x, transform_kernel) + transform_bias, 0.0)
    gate = ops.sigmoid(ops.einsum("...i,io->...o", x, gate_kernel) + gate_bias)
    return x + gate * (transform - x)
''',
        "Keras Dense layers given the weights": '''
def highway(x, transform_kernel, transform_bias, gate_kernel, gate_bias):
    width = transform_kernel.shape[0]
    transform = keras.layers.Dense(width, activation="relu")
    gate = keras.layers.Dense(width, activation="sigmoid")
    for layer, kernel, bias in ((transform, transform_kernel, transform_bias), (gate, gate_kernel, gate_bias)):
        layer.build((None, width))
        layer.set_weights([kernel, bias])
    g = gate(x)
    return g * transform(x) + (1.0 - g) * x
''',
    },
    "character_cnn": {
        "a loop over windows with einsum, relu after the max": '''
def character_cnn(embedded_characters, kernel, bias):
    width = kernel.shape[0]
    positions = embedded_characters.shape[1] - width + 1
    scores = [ops.einsum("nwc,wcf->nf", embedded_characters[:, p:p + width], kernel) + bias
              for p in range(positions)]
    return ops.relu(ops.max(ops.stack(scores, axis=1), axis=1))
''',
        "numpy sliding windows": '''
def character_cnn(embedded_characters, kernel, bias):
    windows = np.lib.stride_tricks.sliding_window_view(embedded_characters, kernel.shape[0], axis=1)
    scores = np.einsum("npcw,wcf->npf", windows, kernel) + bias
    return np.maximum(scores, 0.0).max(axis=1)
''',
        "a sum of shifted matmuls, one per kernel row": '''
def character_cnn(embedded_characters, kernel, bias):
    width, length = kernel.shape[0], embedded_characters.shape[1]
    scores = sum(ops.matmul(embedded_characters[:, k:length - width + 1 + k], kernel[k])
                 for k in range(width))
    return ops.max(ops.maximum(scores + bias, 0.0), axis=1)
''',
    },
    "scalar_mix": {
        "a loop over layers in numpy with a hand-written softmax": '''
def scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    s = np.exp(layer_weights - np.max(layer_weights))
    s = s / s.sum()
    mixed = s[0] * np.concatenate([token_vectors, token_vectors], axis=-1)
    for j in range(forward_layers.shape[1]):
        mixed = mixed + s[j + 1] * np.concatenate([forward_layers[:, j], backward_layers[:, j]], axis=-1)
    return gamma * mixed
''',
        "stack and a broadcast weighted sum": '''
def scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    layers = [ops.concatenate([token_vectors, token_vectors], -1)]
    layers += [ops.concatenate([forward_layers[:, j], backward_layers[:, j]], -1)
               for j in range(forward_layers.shape[1])]
    weights = ops.reshape(ops.softmax(layer_weights), (1, -1, 1, 1))
    return ops.sum(gamma * weights * ops.stack(layers, axis=1), axis=1)
''',
        "a Python sum over the layers, softmax from keras.activations": '''
def scalar_mix(token_vectors, forward_layers, backward_layers, layer_weights, gamma):
    layers = [ops.concatenate([token_vectors, token_vectors], axis=-1)]
    layers += [ops.concatenate([forward_layers[:, j], backward_layers[:, j]], axis=-1)
               for j in range(forward_layers.shape[1])]
    weights = keras.activations.softmax(ops.convert_to_tensor(layer_weights)[None])[0]
    return gamma * sum(weights[j] * layer for j, layer in enumerate(layers))
''',
    },
    "language_model_targets": {
        "numpy slicing": '''
def language_model_targets(word_ids):
    forward, backward = np.zeros_like(word_ids), np.zeros_like(word_ids)
    forward[:, :-1] = word_ids[:, 1:]
    backward[:, 1:] = np.where(word_ids[:, 1:] > 0, word_ids[:, :-1], 0)
    return forward, backward, (forward > 0).astype("float32"), (backward > 0).astype("float32")
''',
        "ops.pad and ops.where": '''
def language_model_targets(word_ids):
    forward = ops.pad(word_ids[:, 1:], [[0, 0], [0, 1]])
    backward = ops.where(word_ids == 0, 0, ops.pad(word_ids[:, :-1], [[0, 0], [1, 0]]))
    return (forward, backward, ops.where(forward == 0, 0.0, 1.0), ops.where(backward == 0, 0.0, 1.0))
''',
        "a numpy loop over the rows": '''
def language_model_targets(word_ids):
    word_ids = np.asarray(word_ids)
    forward, backward = np.zeros_like(word_ids), np.zeros_like(word_ids)
    for row, ids in enumerate(word_ids):
        n = int((ids != 0).sum())
        forward[row, :n - 1] = ids[1:n]
        backward[row, 1:n] = ids[:n - 1]
    return forward, backward, (forward != 0).astype("float32"), (backward != 0).astype("float32")
''',
    },
    "CharacterEncoder": {
        "the Conv1D layers called directly, relu and max over positions": '''
class CharacterEncoder(CharacterEncoder):
    def call(self, character_ids):
        shape = ops.shape(character_ids)
        embedded = self.character_embedding(ops.reshape(character_ids, (-1, shape[-1])))
        x = ops.concatenate([ops.max(ops.relu(convolution(embedded)), axis=1) for convolution in self.convolutions],
                            axis=-1)
        for transform, gate in self.highways:
            g = ops.sigmoid(gate(x))
            x = g * ops.relu(transform(x)) + (1 - g) * x
        return ops.reshape(self.projection(x), (shape[0], shape[1], -1))
''',
        "a one-hot matmul for the lookup, the tokens kept as [B, T] throughout": '''
class CharacterEncoder(CharacterEncoder):
    def call(self, character_ids):
        one_hot = ops.one_hot(character_ids, NUM_CHARACTERS)
        embedded = ops.matmul(one_hot, self.character_embedding.embeddings)  # [B, T, 50, c]
        pooled = []
        for convolution in self.convolutions:
            width = convolution.kernel.shape[0]
            windows = ops.stack([embedded[:, :, p:p + width] for p in range(embedded.shape[2] - width + 1)], axis=2)
            scores = ops.einsum("btpwc,wcf->btpf", windows, convolution.kernel) + convolution.bias
            pooled.append(ops.max(ops.relu(scores), axis=2))
        x = ops.concatenate(pooled, axis=-1)
        for transform, gate in self.highways:
            x = highway(x, transform.kernel, transform.bias, gate.kernel, gate.bias)
        return self.projection(x)
''',
        "ops.take on the table, float64 inside": '''
class CharacterEncoder(CharacterEncoder):
    def call(self, character_ids):
        batch, length, characters = character_ids.shape
        table = ops.cast(self.character_embedding.embeddings, "float64")
        embedded = ops.take(table, ops.reshape(character_ids, (-1, characters)), axis=0)
        x = ops.concatenate([character_cnn(embedded, ops.cast(c.kernel, "float64"), ops.cast(c.bias, "float64"))
                             for c in self.convolutions], axis=-1)
        for transform, gate in self.highways:
            x = highway(x, *(ops.cast(w, "float64") for w in (transform.kernel, transform.bias, gate.kernel, gate.bias)))
        x = ops.matmul(x, ops.cast(self.projection.kernel, "float64")) + ops.cast(self.projection.bias, "float64")
        return ops.cast(ops.reshape(x, (batch, length, -1)), "float32")
''',
    },
}
