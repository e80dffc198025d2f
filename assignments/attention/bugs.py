"""Known bugs (plausible student mistakes) and alternative correct solutions for the attention assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
"""

BUGS = {
    "scaled_dot_product_attention": [
        ("no 1/sqrt(d) scaling of the scores", " / np.sqrt(head_dim)", ""),
        ("scores divided by d instead of sqrt(d)", "np.sqrt(head_dim)", "head_dim"),
        ("mask applied after the softmax (weights no longer sum to one)",
         "    if mask is not None:\n        scores = ops.where(mask, scores, -1e9)\n"
         "    weights = ops.softmax(scores, axis=-1)\n",
         "    weights = ops.softmax(scores, axis=-1)\n"
         "    if mask is not None:\n        weights = ops.where(mask, weights, 0.0)\n"),
        ("softmax taken over the query axis instead of the key axis",
         "ops.softmax(scores, axis=-1)", "ops.softmax(scores, axis=-2)"),
        ("mask inverted (True treated as 'blocked')",
         "ops.where(mask, scores, -1e9)", "ops.where(mask, -1e9, scores)"),
        ("mask ignored", "scores = ops.where(mask, scores, -1e9)", "pass"),
        ("keys used as values", '"bhqk,bhkd->bhqd", weights, value', '"bhqk,bhkd->bhqd", weights, key'),
        ("masked scores set to zero instead of a large negative number",
         "ops.where(mask, scores, -1e9)", "ops.where(mask, scores, 0.0)"),
    ],
    "causal_attention_mask": [
        ("causal mask off by one: a query cannot see its own position (j < i)",
         "key_positions <= query_positions",
         "key_positions < query_positions"),
        ("upper-triangular mask: queries see the future, not the past", "key_positions <= query_positions",
         "key_positions >= query_positions"),
        ("offset ignored (breaks cached decoding)",
         "ops.arange(query_length)[:, None] + offset", "ops.arange(query_length)[:, None]"),
        ("offset subtracted", "ops.arange(query_length)[:, None] + offset",
         "ops.arange(query_length)[:, None] - offset"),
        ("causal mask off by one: a query sees the next position (j <= i + 1)",
         "key_positions <= query_positions", "key_positions <= query_positions + 1"),
        ("mask returned as additive float scores instead of booleans",
         "return key_positions <= query_positions",
         "return ops.where(key_positions <= query_positions, 0.0, -1e9)"),
        ("offset added to the key positions instead of the query positions",
         "ops.arange(query_length)[:, None] + offset\n    key_positions = ops.arange(key_length)[None, :]",
         "ops.arange(query_length)[:, None]\n    key_positions = ops.arange(key_length)[None, :] + offset"),
        ("offset assumed to be key_length - query_length (a chunk in mid-cache sees the wrong keys)",
         "ops.arange(query_length)[:, None] + offset", "ops.arange(query_length)[:, None] + key_length - query_length"),
        ("mask transposed: [key_length, query_length]", "return key_positions <= query_positions",
         "return ops.transpose(key_positions <= query_positions)"),
    ],
    "split_heads": [
        ("reshaped straight to [B, h, T, d] without a transpose",
         "x = ops.reshape(x, (batch, length, num_heads, hidden // num_heads))\n"
         "    return ops.transpose(x, (0, 2, 1, 3))",
         "return ops.reshape(x, (batch, num_heads, length, hidden // num_heads))"),
        ("head index taken from the last axis instead of splitting H as (h, d)",
         "ops.reshape(x, (batch, length, num_heads, hidden // num_heads))\n"
         "    return ops.transpose(x, (0, 2, 1, 3))",
         "ops.reshape(x, (batch, length, hidden // num_heads, num_heads))\n"
         "    return ops.transpose(x, (0, 3, 1, 2))"),
        ("heads and sequence axes left unswapped", "return ops.transpose(x, (0, 2, 1, 3))", "return x"),
        ("transpose to [B, h, d, T]", "return ops.transpose(x, (0, 2, 1, 3))",
         "return ops.transpose(x, (0, 2, 3, 1))"),
        ("num_heads used as the head width",
         "(batch, length, num_heads, hidden // num_heads)", "(batch, length, hidden // num_heads, num_heads)"),
        ("heads axis put first: [h, B, T, d]", "return ops.transpose(x, (0, 2, 1, 3))",
         "return ops.transpose(x, (2, 0, 1, 3))"),
        ("two heads hard-coded", "(batch, length, num_heads, hidden // num_heads)", "(batch, length, 2, hidden // 2)"),
        ("heads stacked on the last axis: [B, T, d, h]",
         "x = ops.reshape(x, (batch, length, num_heads, hidden // num_heads))\n"
         "    return ops.transpose(x, (0, 2, 1, 3))",
         "return ops.stack(ops.split(x, num_heads, axis=-1), axis=-1)"),
    ],
    "merge_heads": [
        ("reshaped straight to [B, T, H] without a transpose",
         "ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim))",
         "ops.reshape(x, (batch, length, heads * head_dim))"),
        ("heads merged in (d, h) order instead of (h, d)", "ops.reshape(ops.transpose(x, (0, 2, 1, 3))",
         "ops.reshape(ops.transpose(x, (0, 2, 3, 1))"),
        ("heads averaged instead of concatenated",
         "return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim))",
         "return ops.mean(x, axis=1)"),
        ("only the first head kept",
         "return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim))",
         "return x[:, 0]"),
        ("sequence and head-width axes swapped",
         "ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim)",
         "ops.transpose(x, (0, 3, 1, 2)), (batch, length, heads * head_dim)"),
        ("heads summed instead of concatenated",
         "return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim))",
         "return ops.sum(x, axis=1)"),
        ("heads concatenated along the sequence axis: [B, h * T, d]",
         "return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, length, heads * head_dim))",
         "return ops.reshape(x, (batch, heads * length, head_dim))"),
        ("batch and sequence axes mixed up before the reshape", "ops.reshape(ops.transpose(x, (0, 2, 1, 3))",
         "ops.reshape(ops.transpose(x, (2, 0, 1, 3))"),
    ],
    "MultiHeadAttention": [
        ("no output projection (the merged heads returned as they are)",
         "return self.output_dense(merge_heads(outputs))", "return merge_heads(outputs)"),
        ("keys projected with the query layer",
         "key = split_heads(self.key_dense(x)", "key = split_heads(self.query_dense(x)"),
        ("values projected with the key layer",
         "value = split_heads(self.value_dense(x)", "value = split_heads(self.key_dense(x)"),
        ("attention_mask not passed on (padding and future keys stay visible)",
         "scaled_dot_product_attention(query, key, value, attention_mask)",
         "scaled_dot_product_attention(query, key, value)"),
        ("attention_mask inverted before it is passed on",
         "scaled_dot_product_attention(query, key, value, attention_mask)",
         "scaled_dot_product_attention(query, key, value, ops.logical_not(attention_mask))"),
        ("the head width used as the number of heads",
         "        query = split_heads(self.query_dense(x), self.num_heads)\n"
         "        key = split_heads(self.key_dense(x), self.num_heads)\n"
         "        value = split_heads(self.value_dense(x), self.num_heads)\n",
         "        heads = self.hidden_dim // self.num_heads\n"
         "        query = split_heads(self.query_dense(x), heads)\n"
         "        key = split_heads(self.key_dense(x), heads)\n"
         "        value = split_heads(self.value_dense(x), heads)\n"),
        ("a residual connection added inside the attention layer (the block adds it)",
         "return self.output_dense(merge_heads(outputs))", "return x + self.output_dense(merge_heads(outputs))"),
        ("the query projection taken through numpy (no gradient reaches its weights)",
         "query = split_heads(self.query_dense(x), self.num_heads)",
         "query = split_heads(ops.convert_to_numpy(self.query_dense(x)), self.num_heads)"),
        ("heads never split: one head of the full width",
         "        query = split_heads(self.query_dense(x), self.num_heads)\n"
         "        key = split_heads(self.key_dense(x), self.num_heads)\n"
         "        value = split_heads(self.value_dense(x), self.num_heads)\n"
         "        outputs, _ = scaled_dot_product_attention(query, key, value, attention_mask)\n"
         "        return self.output_dense(merge_heads(outputs))",
         "        query, key, value = (dense(x)[:, None] for dense in (self.query_dense, self.key_dense, "
         "self.value_dense))\n"
         "        outputs, _ = scaled_dot_product_attention(query, key, value, attention_mask)\n"
         "        return self.output_dense(outputs[:, 0])"),
    ],
}

CORRECT = {
    "scaled_dot_product_attention": {
        "matmul and swapaxes instead of einsum": '''
def scaled_dot_product_attention(query, key, value, mask=None):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2)) / ops.sqrt(ops.cast(ops.shape(query)[-1], "float32"))
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, ops.full_like(scores, -1e30))
    weights = ops.softmax(scores)
    return ops.matmul(weights, value), weights
''',
        "additive mask and a hand-written stable softmax": '''
def scaled_dot_product_attention(query, key, value, mask=None):
    d = query.shape[-1]
    scores = ops.einsum("bhqd,bhkd->bhqk", query * d ** -0.5, key)
    if mask is not None:
        scores = scores + (1.0 - ops.cast(mask, "float32")) * -1e9
    scores = scores - ops.max(scores, axis=-1, keepdims=True)
    weights = ops.exp(scores) / ops.sum(ops.exp(scores), axis=-1, keepdims=True)
    return ops.einsum("bhqk,bhkd->bhqd", weights, value), weights
''',
        "a Python loop over batch and heads in numpy": '''
def scaled_dot_product_attention(query, key, value, mask=None):
    query, key, value = (np.asarray(t, "float64") for t in (query, key, value))
    b, h, q, d = query.shape
    full_mask = np.broadcast_to(True if mask is None else np.asarray(mask), (b, h, q, key.shape[2]))
    outputs, weights = np.zeros_like(query), np.zeros((b, h, q, key.shape[2]))
    for i in range(b):
        for j in range(h):
            s = query[i, j] @ key[i, j].T / np.sqrt(d)
            s = np.where(full_mask[i, j], s, -np.inf)
            w = np.exp(s - s.max(axis=-1, keepdims=True))
            weights[i, j] = w / w.sum(axis=-1, keepdims=True)
            outputs[i, j] = weights[i, j] @ value[i, j]
    return outputs.astype("float32"), weights.astype("float32")
''',
    },
    "causal_attention_mask": {
        "numpy tril with a diagonal offset": '''
def causal_attention_mask(query_length, key_length, offset=0):
    return np.tril(np.ones((query_length, key_length), dtype=bool), k=offset)
''',
        "a comparison with broadcasting in the other order": '''
def causal_attention_mask(query_length, key_length, offset=0):
    i = ops.expand_dims(ops.arange(offset, offset + query_length), 1)
    j = ops.expand_dims(ops.arange(key_length), 0)
    return ops.greater_equal(i, j)
''',
        "nested Python loops": '''
def causal_attention_mask(query_length, key_length, offset=0):
    return np.array([[j <= i + offset for j in range(key_length)] for i in range(query_length)])
''',
    },
    "split_heads": {
        "numpy reshape and swapaxes": '''
def split_heads(x, num_heads):
    b, t, w = x.shape
    return np.swapaxes(np.reshape(x, (b, t, num_heads, -1)), 1, 2)
''',
        "stacking slices of the hidden axis": '''
def split_heads(x, num_heads):
    width = x.shape[-1] // num_heads
    return ops.stack([x[..., h * width:(h + 1) * width] for h in range(num_heads)], axis=1)
''',
        "Keras Reshape and Permute layers": '''
def split_heads(x, num_heads):
    length, hidden = x.shape[1], x.shape[2]
    x = keras.layers.Reshape((length, num_heads, hidden // num_heads))(x)
    return keras.layers.Permute((2, 1, 3))(x)
''',
    },
    "merge_heads": {
        "numpy swapaxes and reshape with -1": '''
def merge_heads(x):
    x = np.swapaxes(np.asarray(x), 1, 2)
    return x.reshape(x.shape[0], x.shape[1], -1)
''',
        "concatenating the heads along the hidden axis": '''
def merge_heads(x):
    return ops.concatenate([x[:, h] for h in range(x.shape[1])], axis=-1)
''',
        "Keras Permute and Reshape layers": '''
def merge_heads(x):
    _, heads, length, head_dim = x.shape
    return keras.layers.Reshape((length, heads * head_dim))(keras.layers.Permute((2, 1, 3))(x))
''',
    },
    "MultiHeadAttention": {
        "the heads reshaped inline and attention written out with einsum": '''
class MultiHeadAttention(MultiHeadAttention):
    def call(self, x, attention_mask=None):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        head_dim = self.hidden_dim // self.num_heads

        def heads(dense):
            return ops.transpose(ops.reshape(dense(x), (batch, length, self.num_heads, head_dim)), (0, 2, 1, 3))

        scores = ops.einsum("bhqd,bhkd->bhqk", heads(self.query_dense), heads(self.key_dense)) / head_dim ** 0.5
        if attention_mask is not None:
            scores = ops.where(attention_mask, scores, -1e9)
        outputs = ops.einsum("bhqk,bhkd->bqhd", ops.softmax(scores, axis=-1), heads(self.value_dense))
        return self.output_dense(ops.reshape(outputs, (batch, length, self.hidden_dim)))
''',
        "keras.ops.dot_product_attention on [B, T, h, d]": '''
class MultiHeadAttention(MultiHeadAttention):
    def call(self, x, attention_mask=None):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        shape = (batch, length, self.num_heads, self.hidden_dim // self.num_heads)
        query, key, value = (ops.reshape(dense(x), shape)
                             for dense in (self.query_dense, self.key_dense, self.value_dense))
        mask = None if attention_mask is None else ops.broadcast_to(
            attention_mask, (batch, self.num_heads, length, length))
        outputs = ops.dot_product_attention(query, key, value, mask=mask)
        return self.output_dense(ops.reshape(outputs, (batch, length, self.hidden_dim)))
''',
        "a Python loop over the heads, slicing the projections and concatenating": '''
class MultiHeadAttention(MultiHeadAttention):
    def call(self, x, attention_mask=None):
        width = self.hidden_dim // self.num_heads
        query, key, value = self.query_dense(x), self.key_dense(x), self.value_dense(x)
        mask = None if attention_mask is None else ops.cast(attention_mask, "bool")[:, 0]
        heads = []
        for h in range(self.num_heads):
            part = slice(h * width, (h + 1) * width)
            scores = ops.matmul(query[..., part], ops.swapaxes(key[..., part], 1, 2)) / ops.sqrt(float(width))
            if mask is not None:
                scores = ops.where(mask, scores, -1e9)
            heads.append(ops.matmul(ops.softmax(scores), value[..., part]))
        return self.output_dense(ops.concatenate(heads, axis=-1))
''',
    },
}
