"""Known bugs (plausible student mistakes) and alternative correct solutions for the after-BERT assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
"""

BUGS = {
    "accumulate_gradients": [
        ("plain mean of the micro-batch gradients (right only when every micro-batch holds as many tokens)",
         "weights = counts / ops.sum(counts)",
         "weights = ops.ones_like(counts) / ops.cast(ops.shape(counts)[0], \"float32\")"),
        ("sum of the micro-batch gradients (k times too large a step)", "weights = counts / ops.sum(counts)",
         "weights = ops.ones_like(counts)"),
        ("weighted by the counts but not divided by the total count", "weights = counts / ops.sum(counts)",
         "weights = counts"),
        ("weighted by the counts, divided by the number of micro-batches",
         "counts / ops.sum(counts)", "counts / ops.cast(ops.shape(counts)[0], \"float32\")"),
        ("weighted by 1 / count instead of by count", "weights = counts / ops.sum(counts)",
         "weights = (1.0 / counts) / ops.sum(1.0 / counts)"),
        ("only the last micro-batch's gradient", "return ops.tensordot(weights, micro_gradients, axes=1)",
         "return micro_gradients[-1]"),
        ("integer division of the counts (every weight truncated to 0)",
         'counts = ops.cast(token_counts, "float32")\n    weights = counts / ops.sum(counts)',
         "weights = token_counts // ops.sum(token_counts)"),
        ("only the first micro-batch's gradient", "return ops.tensordot(weights, micro_gradients, axes=1)",
         "return micro_gradients[0]"),
        ("accumulated in place into the first micro-batch's gradient",
         "return ops.tensordot(weights, micro_gradients, axes=1)",
         "total = micro_gradients[0]\n    total *= float(weights[0])\n"
         "    for step in range(1, len(micro_gradients)):\n"
         "        total += float(weights[step]) * micro_gradients[step]\n    return total"),
    ],
    "albert_parameter_counts": [
        ("a separate block for every layer (no cross-layer sharing)", "encoder = num_groups * block",
         "encoder = num_layers * block"),
        ("token table V*H, as in BERT, instead of V*E",
         "tables = (V + T + 2) * E", "tables = V * H + (T + 2) * E"),
        ("embedding projection E->H left out", "embedding = tables + 2 * E + (E * H + H)",
         "embedding = tables + 2 * E"),
        ("projection bias left out", "(E * H + H)", "E * H"),
        ("pooler left out of the total", "pooler = H * H + H", "pooler = 0"),
        ("no position or segment tables", "tables = (V + T + 2) * E", "tables = V * E"),
        ("one LayerNorm per block instead of two", "2 * (2 * H)", "2 * H"),
        ("three attention projections (the output projection forgotten)", "4 * (H * H + H)",
         "3 * (H * H + H)"),
        ("feed-forward biases left out", "(H * I + I) + (I * H + H)", "2 * H * I"),
    ],
    "factorised_embedding": [
        ("projection bias left out", " + projection_bias", ""),
        ("a tanh after the projection (ALBERT's projection is linear)",
         "return ops.matmul(embedded, projection_kernel) + projection_bias",
         "return ops.tanh(ops.matmul(embedded, projection_kernel) + projection_bias)"),
        ("a GELU after the projection (ALBERT's projection is linear)",
         "return ops.matmul(embedded, projection_kernel) + projection_bias",
         "return ops.gelu(ops.matmul(embedded, projection_kernel) + projection_bias)"),
        ("positions looked up instead of token ids", "ops.take(token_table, token_ids, axis=0)",
         "ops.broadcast_to(token_table[: token_ids.shape[1]][None], token_ids.shape + token_table.shape[1:])"),
        ("projection kernel transposed", "ops.matmul(embedded, projection_kernel)",
         "ops.matmul(embedded, ops.transpose(projection_kernel))"),
        ("bias added before the projection", "ops.matmul(embedded, projection_kernel) + projection_bias",
         "ops.matmul(embedded + projection_bias, projection_kernel)"),
        ("a relu after the projection (ALBERT's projection is linear)",
         "return ops.matmul(embedded, projection_kernel) + projection_bias",
         "return ops.relu(ops.matmul(embedded, projection_kernel) + projection_bias)"),
        ("embeddings scaled by sqrt(E), as in the original Transformer",
         "embedded = ops.take(token_table, token_ids, axis=0)",
         "embedded = ops.take(token_table, token_ids, axis=0) * np.sqrt(ops.shape(token_table)[1])"),
        ("table looked up along the embedding axis", "ops.take(token_table, token_ids, axis=0)",
         "ops.take(token_table, token_ids, axis=1)"),
    ],
    "replaced_token_labels": [
        ("every masked position labelled replaced, even where the generator guessed right",
         'return corrupted, ops.cast(ops.not_equal(corrupted, original), "float32")',
         'return corrupted, ops.cast(written, "float32")'),
        ("labels inverted (1 = original)",
         "ops.not_equal(corrupted, original)", "ops.equal(corrupted, original)"),
        ("compared with the masked input instead of the original",
         "ops.not_equal(corrupted, original)", "ops.not_equal(corrupted, token_ids)"),
        ("padding slots of the prediction list written too (position 0 overwritten)",
         " * mask_weights[..., None]", ""),
        ("the samples never written: the discriminator reads [MASK]",
         "corrupted, original = fill(sampled_ids), fill(original_ids)",
         "corrupted, original = token_ids, fill(original_ids)"),
        ("originals written into the discriminator's input",
         "corrupted, original = fill(sampled_ids), fill(original_ids)",
         "corrupted, original = fill(original_ids), fill(sampled_ids)"),
        ("labels returned as integers", 'ops.cast(ops.not_equal(corrupted, original), "float32")',
         'ops.cast(ops.not_equal(corrupted, original), "int32")'),
        ("corrupted ids returned as floats", 'return ops.where(written, ops.cast(scattered, "int32"), token_ids)',
         'return ops.where(written, scattered, ops.cast(token_ids, "float32"))'),
        ("the samples written into token_ids in place",
         "corrupted, original = fill(sampled_ids), fill(original_ids)",
         "corrupted, original = fill(sampled_ids), fill(original_ids)\n    token_ids[...] = np.asarray(corrupted)"),
    ],
    "replaced_token_detection_loss": [
        ("padding tokens included in the mean", "return ops.sum(token_losses * weights) / ops.sum(weights)",
         "return ops.mean(token_losses)"),
        ("labels inverted (1 = original)", "- labels * logits", "- (1.0 - labels) * logits"),
        ("sum over real tokens instead of the mean", " / ops.sum(weights)", ""),
        ("mean of per-sequence means (short sequences weigh more)",
         "return ops.sum(token_losses * weights) / ops.sum(weights)",
         "return ops.mean(ops.sum(token_losses * weights, axis=1) / ops.sum(weights, axis=1))"),
        ("real-token sum divided by the number of sequences", " / ops.sum(weights)",
         " / ops.cast(ops.shape(weights)[0], \"float32\")"),
        ("squared error of the probabilities instead of cross-entropy",
         "token_losses = ops.softplus(logits) - labels * logits",
         "token_losses = (ops.sigmoid(logits) - labels) ** 2"),
        ("sign of the logits flipped (sigmoid(-x))", "ops.softplus(logits)", "ops.softplus(-logits)"),
        ("sigmoid taken twice (probabilities passed as logits)",
         "token_losses = ops.softplus(logits) - labels * logits",
         "probabilities = ops.sigmoid(logits)\n    token_losses = ops.softplus(probabilities) - labels * probabilities"),
        ("padding zeroed but counted in the mean", "return ops.sum(token_losses * weights) / ops.sum(weights)",
         "return ops.mean(token_losses * weights)"),
    ],
    "ReplacedTokenDetector": [
        ("no activation between the two Dense layers",
         "ops.gelu(self.dense(sequence_output), approximate=False)", "self.dense(sequence_output)"),
        ("relu instead of GELU", "ops.gelu(self.dense(sequence_output), approximate=False)",
         "ops.relu(self.dense(sequence_output))"),
        ("tanh-approximate GELU (ELECTRA uses the exact erf form)",
         "ops.gelu(self.dense(sequence_output), approximate=False)",
         "ops.gelu(self.dense(sequence_output), approximate=True)"),
        ("the hidden Dense layer skipped (one logit straight from the encoder's output)",
         "self.prediction(hidden)", "self.prediction(sequence_output)"),
        ("loss averaged over every position, padding included",
         "return replaced_token_detection_loss(logits, is_replaced, padding_mask)",
         "return replaced_token_detection_loss(logits, is_replaced, ops.ones_like(padding_mask))"),
        ("sigmoid probabilities passed to the loss as logits",
         "return replaced_token_detection_loss(logits, is_replaced, padding_mask)",
         "return replaced_token_detection_loss(ops.sigmoid(logits), is_replaced, padding_mask)"),
        ("labels inverted (the loss rewards predicting 'original' for replaced tokens)",
         "return replaced_token_detection_loss(logits, is_replaced, padding_mask)",
         "return replaced_token_detection_loss(logits, 1 - is_replaced, padding_mask)"),
        ("logits kept as [B, T, 1] (the loss then broadcasts them against [B, T])",
         "logits = self.prediction(hidden)[..., 0]", "logits = self.prediction(hidden)"),
        ("the logits taken through numpy (no gradient reaches the weights)",
         "logits = self.prediction(hidden)[..., 0]", "logits = ops.convert_to_numpy(self.prediction(hidden))[..., 0]"),
    ],
}

CORRECT = {
    "accumulate_gradients": {
        "a numpy loop over the micro-batches": '''
def accumulate_gradients(micro_gradients, token_counts):
    total = np.zeros(micro_gradients.shape[1:], "float64")
    for gradient, count in zip(micro_gradients, token_counts):
        total += count * gradient
    return total / np.sum(token_counts)
''',
        "each micro-batch's gradient repeated once per token, then averaged": '''
def accumulate_gradients(micro_gradients, token_counts):
    return np.repeat(micro_gradients, token_counts, axis=0).mean(axis=0)
''',
        "broadcasting the counts over the weight's axes": '''
def accumulate_gradients(micro_gradients, token_counts):
    counts = ops.reshape(ops.cast(token_counts, "float32"), (-1,) + (1,) * (len(micro_gradients.shape) - 1))
    return ops.sum(micro_gradients * counts, axis=0) / ops.sum(counts)
''',
    },
    "albert_parameter_counts": {
        "a table of weight shapes, multiplied out": '''
def albert_parameter_counts(vocabulary_size, max_sequence_length, embedding_dim, hidden_dim,
                            intermediate_dim, num_layers, num_groups):
    E, H, I = embedding_dim, hidden_dim, intermediate_dim
    embedding_shapes = [(vocabulary_size, E), (max_sequence_length, E), (2, E), (E,), (E,), (E, H), (H,)]
    block_shapes = [(H, H), (H,)] * 4 + [(H,), (H,), (H, I), (I,), (I, H), (H,), (H,), (H,)]
    count = lambda shapes: sum(int(np.prod(shape)) for shape in shapes)
    embedding = count(embedding_shapes)
    encoder = num_groups * count(block_shapes)
    return embedding, encoder, embedding + encoder + count([(H, H), (H,)])
''',
        "counted with layers of every depth, then divided by the applications per group": '''
def albert_parameter_counts(vocabulary_size, max_sequence_length, embedding_dim, hidden_dim,
                            intermediate_dim, num_layers, num_groups):
    def dense(n_in, n_out):
        return n_in * n_out + n_out
    E, H = embedding_dim, hidden_dim
    embedding = (vocabulary_size + max_sequence_length + 2 + 2) * E + dense(E, H)
    per_application = 4 * dense(H, H) + dense(H, intermediate_dim) + dense(intermediate_dim, H) + 4 * H
    encoder = num_layers * per_application // (num_layers // num_groups)
    return embedding, encoder, embedding + encoder + dense(H, H)
''',
        "a loop over the layers, each group's block counted once": '''
def albert_parameter_counts(vocabulary_size, max_sequence_length, embedding_dim, hidden_dim,
                            intermediate_dim, num_layers, num_groups):
    V, T, E, H, I = vocabulary_size, max_sequence_length, embedding_dim, hidden_dim, intermediate_dim
    dense = lambda n_in, n_out: n_in * n_out + n_out
    embedding = (V + T + 2) * E + 2 * E + dense(E, H)
    block = 4 * dense(H, H) + dense(H, I) + dense(I, H) + 2 * (2 * H)
    groups = {layer * num_groups // num_layers for layer in range(num_layers)}
    encoder = sum(block for _ in groups)
    return embedding, encoder, embedding + encoder + dense(H, H)
''',
    },
    "factorised_embedding": {
        "project the whole table once, then look up": '''
def factorised_embedding(token_ids, token_table, projection_kernel, projection_bias):
    projected_table = ops.matmul(token_table, projection_kernel) + projection_bias
    return ops.take(projected_table, token_ids, axis=0)
''',
        "one-hot rows times the table, with einsum": '''
def factorised_embedding(token_ids, token_table, projection_kernel, projection_bias):
    one_hot = ops.one_hot(token_ids, token_table.shape[0])
    return ops.einsum("btv,ve,eh->bth", one_hot, token_table, projection_kernel) + projection_bias
''',
        "numpy fancy indexing": '''
def factorised_embedding(token_ids, token_table, projection_kernel, projection_bias):
    return token_table[token_ids] @ projection_kernel + projection_bias
''',
    },
    "replaced_token_labels": {
        "a numpy loop over rows and slots": '''
def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
    corrupted, original = np.array(token_ids), np.array(token_ids)
    for b in range(token_ids.shape[0]):
        for p in range(mask_positions.shape[1]):
            if mask_weights[b, p] > 0:
                corrupted[b, mask_positions[b, p]] = sampled_ids[b, p]
                original[b, mask_positions[b, p]] = original_ids[b, p]
    return corrupted, corrupted != original
''',
        "numpy put_along_axis on the real slots only": '''
def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
    real = mask_weights > 0
    # padding slots rewrite the token already at their position, so they change nothing
    kept = np.take_along_axis(token_ids, mask_positions, axis=1)
    corrupted, original = np.array(token_ids), np.array(token_ids)
    np.put_along_axis(corrupted, mask_positions, np.where(real, sampled_ids, kept), axis=1)
    np.put_along_axis(original, mask_positions, np.where(real, original_ids, kept), axis=1)
    return corrupted, (corrupted != original).astype("float32")
''',
        "numpy: each position's slot by comparison and argmax": '''
def replaced_token_labels(token_ids, mask_positions, sampled_ids, original_ids, mask_weights):
    token_ids = np.asarray(token_ids)
    hit = ((np.asarray(mask_positions)[:, :, None] == np.arange(token_ids.shape[1])[None, None, :])
           & (np.asarray(mask_weights)[:, :, None] > 0))
    written, slot = hit.any(axis=1), hit.argmax(axis=1)
    corrupted = np.where(written, np.take_along_axis(np.asarray(sampled_ids), slot, axis=1), token_ids)
    original = np.where(written, np.take_along_axis(np.asarray(original_ids), slot, axis=1), token_ids)
    return corrupted.astype("int32"), (corrupted != original).astype("float32")
''',
    },
    "replaced_token_detection_loss": {
        "Keras' binary cross-entropy from logits with a masked mean": '''
def replaced_token_detection_loss(logits, is_replaced, padding_mask):
    losses = keras.losses.binary_crossentropy(
        ops.cast(is_replaced, "float32")[..., None], logits[..., None], from_logits=True)
    mask = ops.cast(padding_mask, "float32")
    return ops.sum(losses * mask) / ops.sum(mask)
''',
        "the textbook formula in float64 numpy on the real tokens only": '''
def replaced_token_detection_loss(logits, is_replaced, padding_mask):
    real = padding_mask.astype(bool)
    x, y = logits[real].astype("float64"), is_replaced[real]
    p = 1.0 / (1.0 + np.exp(-x))
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
''',
        "a float64 loop over the real tokens": '''
def replaced_token_detection_loss(logits, is_replaced, padding_mask):
    total, count = 0.0, 0
    for row in zip(np.asarray(logits, "float64"), np.asarray(is_replaced), np.asarray(padding_mask)):
        for x, y, real in zip(*row):
            if real:
                p = 1 / (1 + np.exp(-x))
                total -= y * np.log(p) + (1 - y) * np.log(1 - p)
                count += 1
    return np.float32(total / count)
''',
    },
    "ReplacedTokenDetector": {
        "matmuls with the kernels, GELU written with erf, the loss inline": '''
class ReplacedTokenDetector(ReplacedTokenDetector):
    def call(self, sequence_output, is_replaced, padding_mask):
        h = ops.matmul(sequence_output, self.dense.kernel) + self.dense.bias
        h = 0.5 * h * (1.0 + ops.erf(h / np.sqrt(2.0)))
        logits = ops.squeeze(ops.matmul(h, self.prediction.kernel), -1) + self.prediction.bias[0]
        labels, weights = ops.cast(is_replaced, "float32"), ops.cast(padding_mask, "float32")
        losses = ops.maximum(logits, 0.0) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))
        return ops.sum(losses * weights) / ops.sum(weights), logits
''',
        "keras.activations.gelu, ops.squeeze and Keras's binary cross-entropy": '''
class ReplacedTokenDetector(ReplacedTokenDetector):
    def call(self, sequence_output, is_replaced, padding_mask):
        logits = ops.squeeze(self.prediction(keras.activations.gelu(self.dense(sequence_output), approximate=False)),
                             axis=-1)
        losses = keras.losses.binary_crossentropy(ops.cast(is_replaced, "float32")[..., None], logits[..., None],
                                                  from_logits=True)
        weights = ops.cast(padding_mask, "float32")
        return ops.sum(losses * weights) / ops.sum(weights), logits
''',
        "float64 inside": '''
class ReplacedTokenDetector(ReplacedTokenDetector):
    def call(self, sequence_output, is_replaced, padding_mask):
        x = ops.cast(sequence_output, "float64")
        h = ops.gelu(ops.matmul(x, ops.cast(self.dense.kernel, "float64")) + ops.cast(self.dense.bias, "float64"),
                     approximate=False)
        logits = ops.matmul(h, ops.cast(self.prediction.kernel, "float64"))[..., 0] + ops.cast(self.prediction.bias, "float64")
        loss = replaced_token_detection_loss(ops.cast(logits, "float32"), is_replaced, padding_mask)
        return loss, ops.cast(logits, "float32")
''',
    },
}
