"""Known bugs (plausible student mistakes) and alternative correct solutions for the GPT assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
"""

BUGS = {
    "next_token_inputs_and_targets": [
        ("targets not shifted: each position is asked for its own token",
         "target_ids = token_ids[:, 1:]", "target_ids = token_ids[:, :-1]"),
        ("loss weights taken from the inputs' mask (the last real token is asked to predict padding)",
         'ops.cast(padding_mask[:, 1:], "float32")',
         'ops.cast(padding_mask[:, :-1], "float32")'),
        ("padding targets weighted into the loss", 'ops.cast(padding_mask[:, 1:], "float32")',
         'ops.ones_like(target_ids, dtype="float32")'),
        ("shifted the wrong way: predicting the previous token",
         "input_ids, input_mask = token_ids[:, :-1], padding_mask[:, :-1]\n"
         "    target_ids = token_ids[:, 1:]",
         "input_ids, input_mask = token_ids[:, 1:], padding_mask[:, 1:]\n"
         "    target_ids = token_ids[:, :-1]"),
        ("inputs not cut: T positions instead of T - 1",
         "input_ids, input_mask = token_ids[:, :-1], padding_mask[:, :-1]",
         "input_ids, input_mask = token_ids, padding_mask"),
        ("padding told apart by id 0 instead of by the mask", 'ops.cast(padding_mask[:, 1:], "float32")',
         'ops.cast(target_ids != 0, "float32")'),
        ("input mask not cut with the inputs", "padding_mask[:, :-1]\n", "padding_mask\n"),
        ("target weights returned as integers", 'target_weights = ops.cast(padding_mask[:, 1:], "float32")',
         "target_weights = padding_mask[:, 1:]"),
        ("target ids returned as floats", "target_ids = token_ids[:, 1:]",
         'target_ids = ops.cast(token_ids[:, 1:], "float32")'),
    ],
    "keep_top_k": [
        ("keeps k + 1 tokens", "ops.top_k(logits, k)", "ops.top_k(logits, k + 1)"),
        ("threshold at the largest logit (keeps one token)", "[0][:, -1:]", "[0][:, :1]"),
        ("keeps the k smallest logits", "ops.where(logits < kth_largest",
         "ops.where(logits > kth_largest"),
        ("keeps k - 1 tokens", "ops.where(logits < kth_largest",
         "ops.where(logits <= kth_largest"),
        ("filtered logits set to 0", "ops.where(logits < kth_largest, -1e9, logits)",
         "ops.where(logits < kth_largest, 0.0, logits)"),
        ("threshold taken over the batch axis", "kth_largest = ops.top_k(logits, k)[0][:, -1:]",
         "kth_largest = ops.min(ops.top_k(logits, k)[0], axis=0, keepdims=True)[:, -1:]"),
        ("logits filtered in place", "return ops.where(logits < kth_largest, -1e9, logits)",
         "logits[np.asarray(logits < kth_largest)] = -1e9\n    return logits"),
        ("filtered logits set to -inf instead of -1e9", "ops.where(logits < kth_largest, -1e9, logits)",
         "ops.where(logits < kth_largest, -np.inf, logits)"),
        ("probabilities returned instead of logits", "return ops.where(logits < kth_largest, -1e9, logits)",
         "return ops.softmax(ops.where(logits < kth_largest, -1e9, logits), axis=-1)"),
    ],
    "keep_top_p": [
        ("the token that takes the mass past p is dropped (keep cumulative < p)", "mass_above < p",
         "mass_above + probabilities < p"),
        ("no softmax: cumulative sum of logits", "probabilities = ops.softmax(sorted_logits, axis=-1)",
         "probabilities = sorted_logits"),
        ("least likely tokens kept (sorted ascending)", "sorted_logits = -ops.sort(-logits, axis=-1)",
         "sorted_logits = ops.sort(logits, axis=-1)"),
        ("filtered logits set to 0", "ops.where(logits < smallest_kept, -1e9, logits)",
         "ops.where(logits < smallest_kept, 0.0, logits)"),
        ("threshold at the largest kept logit (keeps one token)", "smallest_kept = ops.min(kept",
         "smallest_kept = ops.max(ops.where(mass_above < p, sorted_logits, -np.inf)"),
        ("cumulative mass in vocabulary order, unsorted", "sorted_logits = -ops.sort(-logits, axis=-1)",
         "sorted_logits = logits"),
        ("logits filtered in place", "return ops.where(logits < smallest_kept, -1e9, logits)",
         "logits[np.asarray(logits < smallest_kept)] = -1e9\n    return logits"),
        ("filtered logits set to -inf instead of -1e9", "ops.where(logits < smallest_kept, -1e9, logits)",
         "ops.where(logits < smallest_kept, -np.inf, logits)"),
        ("probabilities returned instead of logits", "return ops.where(logits < smallest_kept, -1e9, logits)",
         "return ops.softmax(ops.where(logits < smallest_kept, -1e9, logits), axis=-1)"),
    ],
    "sample_next_token": [
        ("temperature ignored", "ops.softmax(logits / temperature, axis=-1)", "ops.softmax(logits, axis=-1)"),
        ("logits multiplied by the temperature instead of divided",
         "ops.softmax(logits / temperature, axis=-1)",
         "ops.softmax(logits * temperature, axis=-1)"),
        ("greedy: the draw ignored",
         "return ops.sum(ops.cast(cumulative <= uniform[:, None], \"int32\"), axis=-1)",
         "return ops.argmax(logits, axis=-1)"),
        ("one token too far (counts tokens starting at or below the draw)", "cumulative <= uniform[:, None]",
         "cumulative - probabilities <= uniform[:, None]"),
        ("the draw reversed (1 - u)", "cumulative <= uniform[:, None]", "cumulative <= 1 - uniform[:, None]"),
        ("cumulative sum over the batch axis", "cumulative = ops.cumsum(probabilities, axis=-1)",
         "cumulative = ops.cumsum(probabilities, axis=0)"),
        ("no softmax: cumulative sum of scaled logits",
         "probabilities = ops.softmax(logits / temperature, axis=-1)",
         "probabilities = logits / temperature"),
        ("temperature applied after the softmax", "ops.softmax(logits / temperature, axis=-1)",
         "ops.softmax(logits, axis=-1) / temperature"),
        ("token ids returned as floats", 'ops.cast(cumulative <= uniform[:, None], "int32")',
         'ops.cast(cumulative <= uniform[:, None], "float32")'),
    ],
    "last_token_logits": [
        ("off by one: the first padding position read", 'ops.cast(padding_mask, "int32"), axis=1) - 1',
         'ops.cast(padding_mask, "int32"), axis=1)'),
        ("the last position read even when it is padding",
         "ops.take_along_axis(sequence_output, last[:, None, None], axis=1)[:, 0]", "sequence_output[:, -1]"),
        ("the first position read ([CLS]-style), which has seen only itself",
         "ops.take_along_axis(sequence_output, last[:, None, None], axis=1)[:, 0]", "sequence_output[:, 0]"),
        ("mean of all positions, padding included",
         "ops.take_along_axis(sequence_output, last[:, None, None], axis=1)[:, 0]",
         "ops.mean(sequence_output, axis=1)"),
        ("probabilities (softmax) returned instead of logits",
         "return ops.matmul(last_hidden, kernel) + bias",
         "return ops.softmax(ops.matmul(last_hidden, kernel) + bias)"),
        ("bias left out", "ops.matmul(last_hidden, kernel) + bias", "ops.matmul(last_hidden, kernel)"),
        ("last real token counted along the wrong axis", 'ops.cast(padding_mask, "int32"), axis=1) - 1',
         'ops.cast(padding_mask, "int32"), axis=0) - 1'),
        ("a tanh pooler put on the last hidden state", "ops.matmul(last_hidden, kernel) + bias",
         "ops.matmul(ops.tanh(last_hidden), kernel) + bias"),
        ("every row read at the first row's last token", 'ops.sum(ops.cast(padding_mask, "int32"), axis=1) - 1',
         'ops.sum(ops.cast(padding_mask[:1], "int32"), axis=1) - 1'),
    ],
    "GPTBlock": [
        ("causal mask off by one: a query cannot see its own position",
         "scores = ops.where(key_positions <= query_positions, scores, -1e9)",
         "scores = ops.where(key_positions < query_positions, scores, -1e9)"),
        ("cache offset ignored in the mask (new tokens masked as if they sat at position 0)",
         "query_positions = ops.arange(length)[:, None] + cache_update_index",
         "query_positions = ops.arange(length)[:, None]"),
        ("mask assumes the new tokens end the cache (offset T_max - T; stale slots visible mid-cache)",
         "query_positions = ops.arange(length)[:, None] + cache_update_index",
         "query_positions = ops.arange(length)[:, None] + ops.shape(key)[2] - length"),
        ("new keys and values written at position 0 of the cache", "start = [0, 0, cache_update_index, 0]",
         "start = [0, 0, 0, 0]"),
        ("the cache returned without the new keys and values",
         "return x if cache is None else (x, ops.stack([key, value], axis=1))",
         "return x if cache is None else (x, cache)"),
        ("keys and values swapped in the returned cache",
         "return x if cache is None else (x, ops.stack([key, value], axis=1))",
         "return x if cache is None else (x, ops.stack([value, key], axis=1))"),
        ("post-LayerNorm (BERT's order) instead of GPT-2's pre-LayerNorm",
         "        x = x + self.attention_output_dense(attended)\n"
         "        feedforward = ops.gelu(self.feedforward_intermediate_dense(self.feedforward_layer_norm(x)))\n"
         "        x = x + self.feedforward_output_dense(feedforward)\n",
         "        x = self.attention_layer_norm(x + self.attention_output_dense(attended))\n"
         "        feedforward = ops.gelu(self.feedforward_intermediate_dense(x))\n"
         "        x = self.feedforward_layer_norm(x + self.feedforward_output_dense(feedforward))\n"),
        ("the feed-forward network reads x without its LayerNorm",
         "self.feedforward_intermediate_dense(self.feedforward_layer_norm(x))",
         "self.feedforward_intermediate_dense(x)"),
        ("the attention LayerNorm's output used as the residual",
         "x = x + self.attention_output_dense(attended)", "x = h + self.attention_output_dense(attended)"),
        ("no residual connection around the feed-forward network",
         "x = x + self.feedforward_output_dense(feedforward)", "x = self.feedforward_output_dense(feedforward)"),
        ("relu instead of GELU in the feed-forward network",
         "feedforward = ops.gelu(", "feedforward = ops.relu("),
        ("scores not scaled by 1/sqrt(head_dim)", 'query, key) / head_dim ** 0.5', 'query, key)'),
    ],
}

CORRECT = {
    "next_token_inputs_and_targets": {
        "numpy slicing, weights as floats": '''
def next_token_inputs_and_targets(token_ids, padding_mask):
    ids, mask = np.asarray(token_ids), np.asarray(padding_mask)
    return ids[:, :-1], mask[:, :-1], ids[:, 1:], mask[:, 1:].astype("float32")
''',
        "ops.slice with explicit sizes, weights from a comparison": '''
def next_token_inputs_and_targets(token_ids, padding_mask):
    batch, length = ops.shape(token_ids)
    first = lambda x: ops.slice(x, (0, 0), (batch, length - 1))
    rest = lambda x: ops.slice(x, (0, 1), (batch, length - 1))
    return first(token_ids), first(padding_mask), rest(token_ids), ops.cast(rest(padding_mask) == 1, "float32")
''',
        "roll the ids left, then crop": '''
def next_token_inputs_and_targets(token_ids, padding_mask):
    following = ops.roll(token_ids, -1, axis=1)
    following_mask = ops.roll(padding_mask, -1, axis=1)
    return (token_ids[:, :-1], padding_mask[:, :-1], following[:, :-1],
            ops.cast(following_mask[:, :-1], "float32"))
''',
    },
    "keep_top_k": {
        "numpy sort for the threshold": '''
def keep_top_k(logits, k):
    logits = np.asarray(logits)
    threshold = np.sort(logits, axis=-1)[:, -k][:, None]
    return np.where(logits >= threshold, logits, -1e9).astype("float32")
''',
        "scatter the kept logits into a row of -1e9": '''
def keep_top_k(logits, k):
    values, indices = ops.top_k(logits, k)
    rows = ops.repeat(ops.arange(ops.shape(logits)[0])[:, None], k, axis=1)
    positions = ops.stack([ops.reshape(rows, (-1,)), ops.reshape(indices, (-1,))], axis=1)
    return ops.scatter_update(ops.full(ops.shape(logits), -1e9), positions, ops.reshape(values, (-1,)))
''',
        "rank of each logit by a double argsort": '''
def keep_top_k(logits, k):
    ranks = ops.argsort(ops.argsort(-logits, axis=-1), axis=-1)
    return ops.where(ranks < k, logits, -1e9 * ops.ones_like(logits))
''',
    },
    "keep_top_p": {
        "numpy loop over rows and tokens": '''
def keep_top_p(logits, p):
    logits = np.asarray(logits, "float64")
    kept = np.full(logits.shape, -1e9)
    for row in range(len(logits)):
        probabilities = np.exp(logits[row] - logits[row].max())
        probabilities /= probabilities.sum()
        total = 0.0
        for token in np.argsort(-probabilities):
            if total >= p:
                break
            kept[row, token] = logits[row, token]
            total += probabilities[token]
    return kept.astype("float32")
''',
        "argsort, cumulative mass, and the mask scattered back by rank": '''
def keep_top_p(logits, p):
    order = ops.argsort(-logits, axis=-1)
    probabilities = ops.take_along_axis(ops.softmax(logits, axis=-1), order, axis=-1)
    keep_sorted = ops.cumsum(probabilities, axis=-1) - probabilities < p
    rank = ops.argsort(order, axis=-1)
    keep = ops.take_along_axis(keep_sorted, rank, axis=-1)
    return ops.where(keep, logits, -1e9)
''',
        "top_k over the whole vocabulary, the kept count from the mass": '''
def keep_top_p(logits, p):
    sorted_logits = ops.top_k(logits, ops.shape(logits)[-1])[0]
    probabilities = ops.softmax(sorted_logits)
    count = ops.sum(ops.cast(ops.cumsum(probabilities, axis=-1) - probabilities < p, "int32"), axis=-1)
    threshold = ops.take_along_axis(sorted_logits, (count - 1)[:, None], axis=-1)
    return ops.where(logits >= threshold, logits, -1e9)
''',
    },
    "sample_next_token": {
        "numpy searchsorted per row": '''
def sample_next_token(logits, temperature, uniform):
    scaled = np.asarray(logits, "float64") / temperature
    probabilities = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    return np.array([np.searchsorted(np.cumsum(row), u, side="right")
                     for row, u in zip(probabilities, uniform)])
''',
        "probabilities to the power 1 / temperature, renormalised": '''
def sample_next_token(logits, temperature, uniform):
    probabilities = ops.softmax(logits, axis=-1) ** (1.0 / temperature)
    probabilities = probabilities / ops.sum(probabilities, axis=-1, keepdims=True)
    above = ops.cumsum(probabilities, axis=-1) > ops.expand_dims(uniform, -1)
    return ops.argmax(ops.cast(above, "int32"), axis=-1)
''',
        "argmax of the first cumulative probability above the draw": '''
def sample_next_token(logits, temperature, uniform):
    cumulative = ops.cumsum(ops.softmax(logits / temperature, axis=-1), axis=-1)
    return ops.argmax(ops.cast(cumulative > uniform[:, None], "int32"), axis=-1)
''',
    },
    "last_token_logits": {
        "numpy fancy indexing": '''
def last_token_logits(sequence_output, padding_mask, kernel, bias):
    sequence_output = np.asarray(sequence_output)
    last = np.asarray(padding_mask).sum(axis=1) - 1
    return sequence_output[np.arange(len(last)), last] @ np.asarray(kernel) + np.asarray(bias)
''',
        "one-hot selection of the last position, einsum": '''
def last_token_logits(sequence_output, padding_mask, kernel, bias):
    length = ops.shape(sequence_output)[1]
    last = ops.one_hot(ops.sum(padding_mask, axis=-1) - 1, length)
    return ops.einsum("bt,bth,hc->bc", last, sequence_output, kernel) + bias
''',
        "where the next position is padding or past the end": '''
def last_token_logits(sequence_output, padding_mask, kernel, bias):
    mask = ops.cast(padding_mask, "float32")
    next_is_padding = ops.concatenate([mask[:, 1:], ops.zeros_like(mask[:, :1])], axis=1)
    is_last = mask * (1.0 - next_is_padding)
    vector = ops.sum(sequence_output * is_last[:, :, None], axis=1)
    return ops.matmul(vector, kernel) + bias
''',
    },
    "GPTBlock": {
        "keras.ops.dot_product_attention in [B, T, h, d] with a numpy tril mask": '''
class GPTBlock(GPTBlock):
    def call(self, x, cache=None, cache_update_index=0):
        batch, length = x.shape[0], x.shape[1]
        shape = (batch, length, self.num_heads, self.hidden_dim // self.num_heads)
        h = self.attention_layer_norm(x)
        query, key, value = (ops.reshape(dense(h), shape) for dense in (self.query_dense, self.key_dense, self.value_dense))
        if cache is not None:
            key = ops.slice_update(ops.transpose(cache[:, 0], (0, 2, 1, 3)), [0, cache_update_index, 0, 0], key)
            value = ops.slice_update(ops.transpose(cache[:, 1], (0, 2, 1, 3)), [0, cache_update_index, 0, 0], value)
        visible = np.tril(np.ones((length, key.shape[1]), dtype=bool), k=cache_update_index if cache is not None else 0)
        attended = ops.dot_product_attention(query, key, value, mask=ops.broadcast_to(visible, (batch, self.num_heads) + visible.shape))
        x = x + self.attention_output_dense(ops.reshape(attended, (batch, length, self.hidden_dim)))
        x = x + self.feedforward_output_dense(keras.activations.gelu(
            self.feedforward_intermediate_dense(self.feedforward_layer_norm(x)), approximate=True))
        if cache is None:
            return x
        return x, ops.stack([ops.transpose(key, (0, 2, 1, 3)), ops.transpose(value, (0, 2, 1, 3))], axis=1)
''',
        "a Python loop over the heads, the cache rebuilt by concatenation": '''
class GPTBlock(GPTBlock):
    def call(self, x, cache=None, cache_update_index=0):
        length, width = x.shape[1], self.hidden_dim // self.num_heads
        h = self.attention_layer_norm(x)
        projected = [dense(h) for dense in (self.query_dense, self.key_dense, self.value_dense)]
        heads, new_cache = [], []
        for i in range(self.num_heads):
            query, key, value = (p[..., i * width:(i + 1) * width] for p in projected)
            if cache is not None:
                end = cache_update_index + length
                key = ops.concatenate([cache[:, 0, i, :cache_update_index], key, cache[:, 0, i, end:]], axis=1)
                value = ops.concatenate([cache[:, 1, i, :cache_update_index], value, cache[:, 1, i, end:]], axis=1)
                new_cache.append(ops.stack([key, value], axis=1))
            offset = cache_update_index if cache is not None else 0
            visible = ops.arange(key.shape[1])[None, :] <= ops.arange(offset, offset + length)[:, None]
            scores = ops.where(visible, ops.matmul(query, ops.swapaxes(key, 1, 2)) / np.sqrt(width), -1e9)
            heads.append(ops.matmul(ops.softmax(scores), value))
        x = x + self.attention_output_dense(ops.concatenate(heads, axis=-1))
        x = x + self.feedforward_output_dense(ops.gelu(self.feedforward_intermediate_dense(self.feedforward_layer_norm(x))))
        return x if cache is None else (x, ops.stack(new_cache, axis=2))
''',
        "LayerNorm, GELU and softmax written out, float64 inside the attention": '''
class GPTBlock(GPTBlock):
    def layer_norm(self, layer, x):
        mean = ops.mean(x, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        return (x - mean) / ops.sqrt(variance + 1e-5) * layer.gamma + layer.beta

    def call(self, x, cache=None, cache_update_index=0):
        batch, length = x.shape[0], x.shape[1]
        head_dim = self.hidden_dim // self.num_heads
        split = lambda t: ops.transpose(ops.reshape(t, (batch, length, self.num_heads, head_dim)), (0, 2, 1, 3))
        h = self.layer_norm(self.attention_layer_norm, x)
        query, key, value = (split(dense(h)) for dense in (self.query_dense, self.key_dense, self.value_dense))
        offset = 0
        if cache is not None:
            offset = cache_update_index
            key = ops.slice_update(cache[:, 0], [0, 0, offset, 0], key)
            value = ops.slice_update(cache[:, 1], [0, 0, offset, 0], value)
        scores = ops.einsum("bhqd,bhkd->bhqk", ops.cast(query, "float64"), ops.cast(key, "float64")) / np.sqrt(head_dim)
        visible = np.arange(key.shape[2])[None, :] <= np.arange(length)[:, None] + offset
        scores = ops.where(visible, scores, -np.inf)
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        attended = ops.cast(ops.einsum("bhqk,bhkd->bqhd", weights, ops.cast(value, "float64")), "float32")
        x = x + self.attention_output_dense(ops.reshape(attended, (batch, length, self.hidden_dim)))
        u = self.feedforward_intermediate_dense(self.layer_norm(self.feedforward_layer_norm, x))
        u = 0.5 * u * (1.0 + ops.tanh(np.sqrt(2.0 / np.pi) * (u + 0.044715 * u ** 3)))
        x = x + self.feedforward_output_dense(u)
        return x if cache is None else (x, ops.stack([key, value], axis=1))
''',
    },
}
