"""Known bugs (plausible student mistakes) and alternative correct solutions for the BERT assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
"""

BUGS = {
    "corrupt": [
        ("every selected token becomes [MASK] (no 10% random, no 10% kept)",
         "selected, draws < 0.8)", "selected, draws < 1.0)"),
        ("tokens that were not selected are corrupted too",
         "to_mask = ops.logical_and(selected, draws < 0.8)\n"
         "    to_random = ops.logical_and(selected, ops.logical_and(draws >= 0.8, draws < 0.9))",
         "to_mask = draws < 0.8\n    to_random = ops.logical_and(draws >= 0.8, draws < 0.9)"),
        ("random and kept shares swapped (draws of 0.9 and above take the random token)",
         "ops.logical_and(draws >= 0.8, draws < 0.9)", "draws >= 0.9"),
        ("[MASK] and random replacement swapped (80% random tokens)",
         "corrupted = ops.where(to_random, random_ids, token_ids)\n"
         "    return ops.where(to_mask, mask_token_id, corrupted)",
         "corrupted = ops.where(to_mask, random_ids, token_ids)\n"
         "    return ops.where(to_random, mask_token_id, corrupted)"),
        ("the 10% meant to stay unchanged get random tokens too", "draws < 0.9))", "draws < 1.0))"),
        ("random tokens where [MASK] belongs", "ops.where(to_mask, mask_token_id, corrupted)",
         "ops.where(to_mask, random_ids, corrupted)"),
        ("token_ids overwritten in place (the caller's batch is corrupted too)",
         "corrupted = ops.where(to_random, random_ids, token_ids)\n    return ops.where(to_mask, mask_token_id, corrupted)",
         "token_ids[np.asarray(to_random)] = random_ids[np.asarray(to_random)]\n"
         "    token_ids[np.asarray(to_mask)] = mask_token_id\n    return token_ids"),
        ("random replacements for tokens that were not selected",
         "to_random = ops.logical_and(selected, ops.logical_and(draws >= 0.8, draws < 0.9))",
         "to_random = ops.logical_and(draws >= 0.8, draws < 0.9)"),
        ("shares taken from the wrong end: [MASK] for draws of 0.2 and above, random below 0.1",
         "to_mask = ops.logical_and(selected, draws < 0.8)\n"
         "    to_random = ops.logical_and(selected, ops.logical_and(draws >= 0.8, draws < 0.9))",
         "to_mask = ops.logical_and(selected, draws >= 0.2)\n"
         "    to_random = ops.logical_and(selected, draws < 0.1)"),
    ],
    "masked_lm_loss": [
        ("mean over every prediction slot, padding slots included",
         "ops.sum(token_losses * weights) / ops.sum(weights)", "ops.mean(token_losses * weights)"),
        ("weights ignored (padding slots predicted too)",
         "ops.sum(token_losses * weights) / ops.sum(weights)", "ops.mean(token_losses)"),
        ("sum instead of mean", " / ops.sum(weights)", ""),
        ("divided by the batch size instead of the number of real predictions",
         " / ops.sum(weights)", " / ops.shape(logits)[0]"),
        ("logits used as probabilities (no softmax)", "from_logits=True", "from_logits=False"),
        ("divided by the number of slots per sequence", " / ops.sum(weights)", " / ops.shape(logits)[1]"),
        ("labels of the unused slots zeroed in place",
         "    token_losses = keras.losses.sparse_categorical_crossentropy(",
         "    labels[np.asarray(weights) == 0] = 0\n"
         "    token_losses = keras.losses.sparse_categorical_crossentropy("),
        ("softmax over the prediction slots instead of the vocabulary",
         "token_losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)",
         "token_losses = -ops.take_along_axis(ops.log_softmax(logits, axis=1), labels[..., None], axis=-1)[..., 0]"),
        ("mean per sequence, then over sequences (short sequences weigh more)",
         "return ops.sum(token_losses * weights) / ops.sum(weights)",
         "return ops.mean(ops.sum(token_losses * weights, axis=1) / ops.sum(weights, axis=1))"),
    ],
    "bert_embeddings": [
        ("no position embeddings",
         "\n         + ops.take(position_table, ops.arange(length), axis=0)[None]", ""),
        ("no segment embeddings", "\n         + ops.take(segment_table, segment_ids, axis=0)", ""),
        ("position table indexed by the token ids",
         "ops.take(position_table, ops.arange(length), axis=0)[None]",
         "ops.take(position_table, token_ids, axis=0)"),
        ("no LayerNorm", "return gamma * (x - mean) / ops.sqrt(variance + 1e-12) + beta", "return x"),
        ("LayerNorm without its scale and offset (gamma, beta)",
         "return gamma * (x - mean) / ops.sqrt(variance + 1e-12) + beta",
         "return (x - mean) / ops.sqrt(variance + 1e-12)"),
        ("LayerNorm over the sequence axis instead of the hidden axis",
         "ops.mean(x, axis=-1, keepdims=True)\n    variance = ops.var(x, axis=-1, keepdims=True)",
         "ops.mean(x, axis=1, keepdims=True)\n    variance = ops.var(x, axis=1, keepdims=True)"),
        ("LayerNorm with Keras' default epsilon 1e-3 instead of BERT's 1e-12",
         "variance + 1e-12", "variance + 1e-3"),
        ("divided by the variance instead of the standard deviation", "ops.sqrt(variance + 1e-12)",
         "(variance + 1e-12)"),
    ],
    "classify_from_cls": [
        ("mean over all positions instead of the [CLS] vector",
         "sequence_output[:, 0, :]", "ops.mean(sequence_output, axis=1)"),
        ("last position instead of [CLS] (position 0)",
         "sequence_output[:, 0, :]", "sequence_output[:, -1, :]"),
        ("first example instead of the first position", "sequence_output[:, 0, :]", "sequence_output[0]"),
        ("logits returned, no softmax", "ops.softmax(ops.matmul(cls_vector, kernel) + bias, axis=-1)",
         "ops.matmul(cls_vector, kernel) + bias"),
        ("softmax over the batch axis", "bias, axis=-1)", "bias, axis=0)"),
        ("sigmoid instead of softmax", "ops.softmax(ops.matmul(cls_vector, kernel) + bias, axis=-1)",
         "ops.sigmoid(ops.matmul(cls_vector, kernel) + bias)"),
        ("bias left out", " + bias, axis=-1)", ", axis=-1)"),
        ("softmax taken twice", "return ops.softmax(ops.matmul(cls_vector, kernel) + bias, axis=-1)",
         "return ops.softmax(ops.softmax(ops.matmul(cls_vector, kernel) + bias, axis=-1), axis=-1)"),
        ("position 1 (the first word) instead of [CLS]", "sequence_output[:, 0, :]", "sequence_output[:, 1, :]"),
    ],
    "EncoderBlock": [
        ("padding mask ignored (padding keys get attention)",
         "scores = ops.where(visible_keys, scores, -1e9)", "scores = scores"),
        ("padding mask inverted", "scores = ops.where(visible_keys, scores, -1e9)",
         "scores = ops.where(visible_keys, -1e9, scores)"),
        ("padding mask put on the query axis instead of the key axis",
         'ops.cast(padding_mask, "bool")[:, None, None, :]', 'ops.cast(padding_mask, "bool")[:, None, :, None]'),
        ("softmax over the query axis instead of the key axis",
         "ops.softmax(scores, axis=-1)", "ops.softmax(scores, axis=-2)"),
        ("pre-LayerNorm (GPT-2's order) instead of BERT's post-LayerNorm",
         "        x = self.attention_layer_norm(x + self.attention_output_dense(attended))\n"
         "        feedforward = ops.gelu(self.feedforward_intermediate_dense(x), approximate=False)\n"
         "        return self.feedforward_layer_norm(x + self.feedforward_output_dense(feedforward))",
         "        x = x + self.attention_output_dense(attended)\n"
         "        feedforward = ops.gelu(self.feedforward_intermediate_dense(self.feedforward_layer_norm(x)), "
         "approximate=False)\n"
         "        return x + self.feedforward_output_dense(feedforward)"),
        ("no residual connection around attention",
         "self.attention_layer_norm(x + self.attention_output_dense(attended))",
         "self.attention_layer_norm(self.attention_output_dense(attended))"),
        ("no residual connection around the feed-forward network",
         "self.feedforward_layer_norm(x + self.feedforward_output_dense(feedforward))",
         "self.feedforward_layer_norm(self.feedforward_output_dense(feedforward))"),
        ("tanh-approximate GELU (BERT uses the exact erf form)",
         "ops.gelu(self.feedforward_intermediate_dense(x), approximate=False)",
         "ops.gelu(self.feedforward_intermediate_dense(x), approximate=True)"),
        ("scores not scaled by 1/sqrt(head_dim)", "query, key) / head_dim ** 0.5", "query, key)"),
        ("heads split as (head_dim, heads) instead of (heads, head_dim)",
         "ops.reshape(t, (batch, length, self.num_heads, head_dim)), (0, 2, 1, 3))",
         "ops.reshape(t, (batch, length, head_dim, self.num_heads)), (0, 3, 1, 2))"),
    ],
}

CORRECT = {
    "corrupt": {
        "numpy select and choose": '''
def corrupt(token_ids, selected, draws, random_ids, mask_token_id):
    kind = np.select([~np.asarray(selected), draws < 0.8, draws < 0.9], [0, 1, 2], default=0)
    return np.choose(kind, [token_ids, np.full_like(token_ids, mask_token_id), random_ids])
''',
        "a Python loop over every position": '''
def corrupt(token_ids, selected, draws, random_ids, mask_token_id):
    corrupted = np.array(token_ids)
    for b in range(corrupted.shape[0]):
        for t in range(corrupted.shape[1]):
            if not selected[b, t]:
                continue
            if draws[b, t] < 0.8:
                corrupted[b, t] = mask_token_id
            elif draws[b, t] < 0.9:
                corrupted[b, t] = random_ids[b, t]
    return corrupted
''',
        "integer arithmetic on 0/1 indicators": '''
def corrupt(token_ids, selected, draws, random_ids, mask_token_id):
    chosen = ops.cast(selected, "int32")
    to_mask = chosen * ops.cast(draws < 0.8, "int32")
    to_random = chosen * ops.cast(draws >= 0.8, "int32") * ops.cast(draws < 0.9, "int32")
    keep = 1 - to_mask - to_random
    return keep * token_ids + to_mask * mask_token_id + to_random * random_ids
''',
    },
    "masked_lm_loss": {
        "log_softmax and take_along_axis": '''
def masked_lm_loss(logits, labels, weights):
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)[..., 0]
    return -ops.sum(picked * weights) / ops.sum(weights)
''',
        "one-hot labels and a boolean selection of the real slots": '''
def masked_lm_loss(logits, labels, weights):
    one_hot = ops.one_hot(labels, ops.shape(logits)[-1])
    losses = -ops.sum(one_hot * ops.log_softmax(logits, axis=-1), axis=-1)
    real = ops.convert_to_numpy(weights) > 0
    return np.mean(ops.convert_to_numpy(losses)[real])
''',
        "Keras' loss object with the weighted-mean reduction": '''
def masked_lm_loss(logits, labels, weights):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
    return loss(labels, logits, sample_weight=weights)
''',
    },
    "bert_embeddings": {
        "numpy indexing and a Keras LayerNormalization": '''
def bert_embeddings(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
    x = token_table[token_ids] + position_table[: token_ids.shape[1]] + segment_table[segment_ids]
    norm = keras.layers.LayerNormalization(epsilon=1e-12)
    norm.build(x.shape)
    norm.set_weights([gamma, beta])
    return norm(x)
''',
        "one-hot matmuls and ops.moments": '''
def bert_embeddings(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
    length = token_ids.shape[1]
    x = (ops.matmul(ops.one_hot(token_ids, token_table.shape[0]), token_table)
         + ops.slice(position_table, (0, 0), (length, position_table.shape[1]))
         + ops.matmul(ops.one_hot(segment_ids, segment_table.shape[0]), segment_table))
    mean, variance = ops.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * ops.rsqrt(variance + 1e-12) * gamma + beta
''',
        "float64 numpy, one position at a time": '''
def bert_embeddings(token_ids, segment_ids, token_table, position_table, segment_table, gamma, beta):
    token_ids, segment_ids = np.asarray(token_ids), np.asarray(segment_ids)
    out = np.zeros(token_ids.shape + (token_table.shape[1],))
    for b in range(token_ids.shape[0]):
        for t in range(token_ids.shape[1]):
            v = (np.float64(token_table[token_ids[b, t]]) + position_table[t]
                 + segment_table[segment_ids[b, t]])
            out[b, t] = gamma * (v - v.mean()) / np.sqrt(v.var() + 1e-12) + beta
    return out.astype("float32")
''',
    },
    "classify_from_cls": {
        "einsum and a hand-written stable softmax": '''
def classify_from_cls(sequence_output, kernel, bias):
    logits = ops.einsum("bh,hc->bc", sequence_output[:, 0], kernel) + bias
    exp = ops.exp(logits - ops.max(logits, axis=1, keepdims=True))
    return exp / ops.sum(exp, axis=1, keepdims=True)
''',
        "a Keras Dense softmax layer given the weights": '''
def classify_from_cls(sequence_output, kernel, bias):
    layer = keras.layers.Dense(kernel.shape[1], activation="softmax")
    layer.build((None, kernel.shape[0]))
    layer.set_weights([kernel, bias])
    return layer(sequence_output[:, 0, :])
''',
        "a numpy loop over the examples": '''
def classify_from_cls(sequence_output, kernel, bias):
    rows = []
    for hidden in np.asarray(sequence_output, "float64"):
        logits = hidden[0] @ kernel + bias
        rows.append(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
    return np.array(rows, "float32")
''',
    },
    "EncoderBlock": {
        "keras.ops.dot_product_attention in [B, T, h, d]": '''
class EncoderBlock(EncoderBlock):
    def call(self, x, padding_mask):
        batch, length = x.shape[0], x.shape[1]
        shape = (batch, length, self.num_heads, self.hidden_dim // self.num_heads)
        query, key, value = (ops.reshape(dense(x), shape) for dense in (self.query_dense, self.key_dense, self.value_dense))
        mask = ops.broadcast_to(ops.cast(padding_mask, "bool")[:, None, None, :], (batch, self.num_heads, length, length))
        attended = ops.reshape(ops.dot_product_attention(query, key, value, mask=mask), (batch, length, self.hidden_dim))
        x = self.attention_layer_norm(x + self.attention_output_dense(attended))
        hidden = keras.activations.gelu(self.feedforward_intermediate_dense(x), approximate=False)
        return self.feedforward_layer_norm(x + self.feedforward_output_dense(hidden))
''',
        "a Python loop over the heads with an additive mask": '''
class EncoderBlock(EncoderBlock):
    def call(self, x, padding_mask):
        width = self.hidden_dim // self.num_heads
        query, key, value = self.query_dense(x), self.key_dense(x), self.value_dense(x)
        bias = (1.0 - ops.cast(padding_mask, "float32"))[:, None, :] * -1e9
        heads = []
        for h in range(self.num_heads):
            part = slice(h * width, (h + 1) * width)
            scores = ops.matmul(query[..., part], ops.swapaxes(key[..., part], 1, 2)) / np.sqrt(width) + bias
            heads.append(ops.matmul(ops.softmax(scores), value[..., part]))
        x = self.attention_layer_norm(x + self.attention_output_dense(ops.concatenate(heads, axis=-1)))
        return self.feedforward_layer_norm(
            x + self.feedforward_output_dense(ops.gelu(self.feedforward_intermediate_dense(x), approximate=False)))
''',
        "LayerNorm and GELU written out, float64 inside": '''
class EncoderBlock(EncoderBlock):
    def layer_norm(self, layer, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) / ops.sqrt(variance + 1e-12) * ops.cast(layer.gamma, "float64") + ops.cast(layer.beta, "float64")

    def dense(self, layer, x):
        return ops.matmul(x, ops.cast(layer.kernel, "float64")) + ops.cast(layer.bias, "float64")

    def call(self, x, padding_mask):
        batch, length = x.shape[0], x.shape[1]
        head_dim = self.hidden_dim // self.num_heads
        x = ops.cast(x, "float64")
        split = lambda t: ops.transpose(ops.reshape(t, (batch, length, self.num_heads, head_dim)), (0, 2, 1, 3))
        query, key, value = (split(self.dense(layer, x)) for layer in (self.query_dense, self.key_dense, self.value_dense))
        scores = ops.einsum("bhqd,bhkd->bhqk", query, key) / np.sqrt(head_dim)
        scores = ops.where(np.asarray(padding_mask, bool)[:, None, None, :], scores, -np.inf)
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        attended = ops.einsum("bhqk,bhkd->bqhd", weights / ops.sum(weights, axis=-1, keepdims=True), value)
        x = self.layer_norm(self.attention_layer_norm,
                            x + self.dense(self.attention_output_dense, ops.reshape(attended, (batch, length, -1))))
        u = self.dense(self.feedforward_intermediate_dense, x)
        u = 0.5 * u * (1.0 + ops.erf(u / np.sqrt(2.0)))
        x = self.layer_norm(self.feedforward_layer_norm, x + self.dense(self.feedforward_output_dense, u))
        return ops.cast(x, "float32")
''',
    },
}
