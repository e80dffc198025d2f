"""Known bugs (plausible student mistakes) and alternative correct solutions for the longer-context assignment.

The catalogue's format and how the grader and the tests use it: grader/assignment.py.
A missing `stop_gradient` in `update_memory` leaves every returned value
unchanged, so it is not catalogued there (the notebook's gradient demo and its
written question cover it); in `RelativeMemoryAttention` it is, since the
grader compares the layer's gradient with respect to the memory (zero).
"""

BUGS = {
    "update_memory": [
        ("old memory dropped: only the current segment's states are kept",
         "ops.concatenate([memory, layer_input], axis=1)", "layer_input"),
        ("segment put before the memory (the newest states are not last)",
         "ops.concatenate([memory, layer_input], axis=1)", "ops.concatenate([layer_input, memory], axis=1)"),
        ("the oldest memory_length states kept instead of the newest",
         "states[:, -memory_length:]", "states[:, :memory_length]"),
        ("memory_length ignored: the memory grows with every segment",
         "states[:, -memory_length:]", "states"),
        ("one state too many kept (off by one)", "states[:, -memory_length:]", "states[:, -memory_length - 1:]"),
        ("one state too few kept (off by one)", "states[:, -memory_length:]", "states[:, -memory_length + 1:]"),
        ("the segment length used as the memory length",
         "states[:, -memory_length:]", "states[:, -ops.shape(layer_input)[1]:]"),
        ("memory and segment concatenated along the hidden axis",
         "[memory, layer_input], axis=1)", "[memory, layer_input], axis=-1)"),
        ("the memory returned unchanged (never updated)",
         "return ops.stop_gradient(states[:, -memory_length:])", "return memory"),
    ],
    "memory_attention": [
        ("causal mask without the memory offset (query i reads keys 0 .. i only)",
         "ops.arange(segment_length)[:, None] + memory_length", "ops.arange(segment_length)[:, None]"),
        ("the segment length used as the mask's offset instead of the memory length",
         "ops.arange(segment_length)[:, None] + memory_length",
         "ops.arange(segment_length)[:, None] + segment_length"),
        ("no causal mask: segment tokens read the tokens after them",
         "    scores = ops.where(key_positions <= query_positions, scores, -1e9)\n", ""),
        ("causal mask off by one: a query cannot read its own position",
         "key_positions <= query_positions", "key_positions < query_positions"),
        ("segment put before the memory in the keys and values",
         "ops.concatenate([memory, segment], axis=1)", "ops.concatenate([segment, memory], axis=1)"),
        ("no 1/sqrt(d) scaling of the scores", " / np.sqrt(ops.shape(query)[-1])", ""),
        ("softmax taken over the query axis instead of the key axis",
         "weights = ops.softmax(scores, axis=-1)", "weights = ops.softmax(scores, axis=1)"),
        ("masked scores set to zero instead of a large negative number",
         "scores, -1e9)", "scores, 0.0)"),
        ("memory masked out: the segment attends to itself only",
         "key_positions <= query_positions",
         "(key_positions <= query_positions) & (key_positions >= memory_length)"),
        ("keys projected with the value kernel",
         "key = ops.matmul(context, key_kernel)", "key = ops.matmul(context, value_kernel)"),
    ],
    "relative_position_scores": [
        ("u and v swapped (content bias on the position term and vice versa)",
         "query + content_bias[:, None, :], key)\n    # Every query against every distance: [B, n, T, K + T].\n"
         "    by_distance = ops.einsum(\"bnid,pnd->bnip\", query + position_bias",
         "query + position_bias[:, None, :], key)\n"
         "    by_distance = ops.einsum(\"bnid,pnd->bnip\", query + content_bias"),
        ("content bias u left out", "query + content_bias[:, None, :], key)", "query, key)"),
        ("position bias v left out", "query + position_bias[:, None, :], position)", "query, position)"),
        ("content bias u added to the keys instead of the queries",
         "query + content_bias[:, None, :], key)", "query, key + content_bias[:, None, :])"),
        ("no relative shift: the first K distances taken as they come",
         "ops.take_along_axis(by_distance, rows, axis=-1)", "by_distance[..., :key_length]"),
        ("memory length left out of the distance (query i taken at position i, not M + i)",
         "distance = memory_length + ops.arange", "distance = ops.arange"),
        ("relative shift off by one row", "key_length - distance, ops.shape", "key_length - distance - 1, ops.shape"),
        ("scores divided by sqrt(d) (the scaling comes later, with the mask)",
         "return content + ops.take_along_axis(by_distance, rows, axis=-1)",
         "return (content + ops.take_along_axis(by_distance, rows, axis=-1)) / np.sqrt(ops.shape(query)[-1])"),
        ("position term left out (content scores only)",
         "return content + ops.take_along_axis(by_distance, rows, axis=-1)", "return content"),
        ("distance taken as key minus query (j - i instead of i - j)",
         "distance = memory_length + ops.arange(query_length)[:, None] - ops.arange(key_length)[None, :]",
         "distance = ops.arange(key_length)[None, :] - ops.arange(query_length)[:, None] - memory_length"),
    ],
    "RelativeMemoryAttention": [
        ("memory read without stop_gradient (the gradient flows back into the previous segment)",
         "ops.concatenate([ops.stop_gradient(memory), segment], axis=1)",
         "ops.concatenate([memory, segment], axis=1)"),
        ("stop_gradient on the whole [memory; segment] (no gradient reaches the segment through its keys "
         "and values)",
         "ops.concatenate([ops.stop_gradient(memory), segment], axis=1)",
         "ops.stop_gradient(ops.concatenate([memory, segment], axis=1))"),
        ("the memory's keys and values under stop_gradient (the key and value projections learn nothing "
         "from the memory)",
         "key, value = heads(self.key_dense(context)), heads(self.value_dense(context))",
         "key, value = (heads(ops.concatenate([ops.stop_gradient(dense(memory)), dense(segment)], axis=1))\n"
         "                      for dense in (self.key_dense, self.value_dense))"),
        ("segment put before the memory in the keys and values",
         "[ops.stop_gradient(memory), segment]", "[segment, ops.stop_gradient(memory)]"),
        ("causal mask without the memory offset (query i reads keys 0 .. i only)",
         "memory_length + ops.arange(segment_length)[:, None]", "ops.arange(segment_length)[:, None]"),
        ("the segment length used as the mask's offset instead of the memory length",
         "memory_length + ops.arange(segment_length)[:, None]",
         "segment_length + ops.arange(segment_length)[:, None]"),
        ("u and v swapped (content bias on the position term and vice versa)",
         "self.content_bias, self.position_bias)", "self.position_bias, self.content_bias)"),
        ("position encodings not projected (W_r left out: r cut into heads as it is)",
         "position = self.position_dense(position_encoding)",
         "position = ops.reshape(position_encoding, (-1, self.num_heads, self.head_dim))"),
        ("no 1/sqrt(d) scaling of the scores", "scores / np.sqrt(self.head_dim), -1e9)", "scores, -1e9)"),
        ("scores divided by sqrt(hidden_dim) instead of sqrt(head_dim)",
         "np.sqrt(self.head_dim)", "np.sqrt(self.hidden_dim)"),
        ("softmax taken over the query axis instead of the key axis",
         '"bnij,bnjd->bind", ops.softmax(scores, axis=-1)', '"bnij,bnjd->bind", ops.softmax(scores, axis=-2)'),
        ("heads merged by a reshape, without moving the head axis back",
         'attended = ops.einsum("bnij,bnjd->bind", ops.softmax(scores, axis=-1), value)',
         "attended = ops.reshape(ops.matmul(ops.softmax(scores, axis=-1), value),\n"
         "                               (-1, segment_length, self.num_heads, self.head_dim))"),
    ],
    "span_corruption": [
        ("a sentinel for every dropped token instead of one per span", "        if starts:\n", "        if noisy:\n"),
        ("the same sentinel for every span", "sentinel = sentinels[span]", "sentinel = sentinels[0]"),
        ("sentinels taken from the end of the list", "sentinel = sentinels[span]", "sentinel = sentinels[-1 - span]"),
        ("no sentinels in the target", "            target_ids.append(sentinel)\n", ""),
        ("no sentinels in the input (spans dropped without a marker)",
         "            input_ids.append(sentinel)\n", ""),
        ("span starts found with np.roll (wraps around: a span at the end hides one at the start)",
         "np.concatenate([[False], noise_mask[:-1]])", "np.roll(noise_mask, 1)"),
        ("dropped and kept tokens swapped between input and target",
         "        if noisy:\n            target_ids.append(token)\n        else:\n            input_ids.append(token)\n",
         "        if noisy:\n            input_ids.append(token)\n        else:\n            target_ids.append(token)\n"),
        ("dropped tokens left in the input as well",
         "        if noisy:\n            target_ids.append(token)\n        else:\n            input_ids.append(token)\n",
         "        if noisy:\n            target_ids.append(token)\n        input_ids.append(token)\n"),
        ("a closing sentinel appended to the target",
         'np.array(target_ids, "int32")', 'np.array(target_ids + [sentinels[int(span_starts.sum())]], "int32")'),
        ("a sentinel wherever the mask changes (also after each span)",
         "span_starts = noise_mask & ~previous", "span_starts = noise_mask != previous"),
    ],
    "distillation_loss": [
        ("no T^2 factor", "return temperature ** 2 * ", "return "),
        ("multiplied by T instead of T^2", "return temperature ** 2 * ", "return temperature * "),
        ("KL the wrong way round: KL(student || teacher)",
         "ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)",
         "ops.exp(student_log_probs) * (student_log_probs - teacher_log_probs)"),
        ("teacher not softened (temperature on the student only)",
         "ops.log_softmax(teacher_logits / temperature, axis=-1)", "ops.log_softmax(teacher_logits, axis=-1)"),
        ("student not softened (temperature on the teacher only)",
         "ops.log_softmax(student_logits / temperature, axis=-1)", "ops.log_softmax(student_logits, axis=-1)"),
        ("cross-entropy instead of KL (the teacher's entropy left in)",
         "(teacher_log_probs - student_log_probs)", "(-student_log_probs)"),
        ("weights ignored: mean over every slot, unused ones included",
         "ops.sum(kl * weights) / ops.sum(weights)", "ops.mean(kl)"),
        ("summed over predictions instead of averaged", " / ops.sum(weights)", ""),
        ("averaged over classes instead of summed", "kl = ops.sum(", "kl = ops.mean("),
        ("logits multiplied by the temperature instead of divided",
         "teacher_logits / temperature, axis=-1)\n    student_log_probs = ops.log_softmax(student_logits / temperature",
         "teacher_logits * temperature, axis=-1)\n    student_log_probs = ops.log_softmax(student_logits * temperature"),
    ],
}

CORRECT = {
    "update_memory": {
        "numpy concatenate and a start index": '''
def update_memory(memory, layer_input, memory_length):
    states = np.concatenate([np.asarray(memory), np.asarray(layer_input)], axis=1)
    start = max(0, states.shape[1] - memory_length)
    return states[:, start:]
''',
        "ops.take of the newest positions": '''
def update_memory(memory, layer_input, memory_length):
    states = ops.concatenate([memory, layer_input], axis=1)
    total = ops.shape(states)[1]
    return ops.stop_gradient(ops.take(states, ops.arange(max(0, total - memory_length), total), axis=1))
''',
        "drop the oldest from the memory, then the segment's overflow": '''
def update_memory(memory, layer_input, memory_length):
    keep_from_memory = max(0, memory_length - layer_input.shape[1])
    kept = memory[:, memory.shape[1] - min(keep_from_memory, memory.shape[1]):]
    newest = layer_input[:, max(0, layer_input.shape[1] - memory_length):]
    return ops.stop_gradient(ops.concatenate([kept, newest], axis=1))
''',
    },
    "memory_attention": {
        "numpy loops in float64": '''
def memory_attention(segment, memory, query_kernel, key_kernel, value_kernel):
    segment, memory = np.asarray(segment, "float64"), np.asarray(memory, "float64")
    context = np.concatenate([memory, segment], axis=1)
    m, t = memory.shape[1], segment.shape[1]
    outputs = np.zeros((segment.shape[0], t, value_kernel.shape[1]))
    weights = np.zeros((segment.shape[0], t, m + t))
    for b in range(segment.shape[0]):
        q, k, v = segment[b] @ query_kernel, context[b] @ key_kernel, context[b] @ value_kernel
        for i in range(t):
            s = k[: m + i + 1] @ q[i] / np.sqrt(q.shape[-1])
            w = np.exp(s - s.max())
            weights[b, i, : m + i + 1] = w / w.sum()
            outputs[b, i] = weights[b, i] @ v
    return outputs.astype("float32"), weights.astype("float32")
''',
        "memory scores and segment scores apart, a triangular mask on the segment": '''
def memory_attention(segment, memory, query_kernel, key_kernel, value_kernel):
    q = ops.matmul(segment, query_kernel) / np.sqrt(query_kernel.shape[1])
    memory_scores = ops.einsum("bid,bjd->bij", q, ops.matmul(memory, key_kernel))
    segment_scores = ops.einsum("bid,bjd->bij", q, ops.matmul(segment, key_kernel))
    t = segment.shape[1]
    segment_scores = ops.where(np.tril(np.ones((t, t), bool)), segment_scores, -np.inf)
    weights = ops.softmax(ops.concatenate([memory_scores, segment_scores], axis=-1))
    values = ops.matmul(ops.concatenate([memory, segment], axis=1), value_kernel)
    return ops.einsum("bij,bjd->bid", weights, values), weights
''',
        "a Keras Softmax layer with a mask": '''
def memory_attention(segment, memory, query_kernel, key_kernel, value_kernel):
    m, t = memory.shape[1], segment.shape[1]
    context = ops.concatenate([memory, segment], axis=1)
    scores = ops.matmul(ops.matmul(segment, query_kernel), ops.transpose(ops.matmul(context, key_kernel), (0, 2, 1)))
    visible = np.tril(np.ones((t, m + t), bool), k=m)
    weights = keras.layers.Softmax()(scores * query_kernel.shape[1] ** -0.5, mask=visible[None])
    return ops.matmul(weights, ops.matmul(context, value_kernel)), weights
''',
    },
    "relative_position_scores": {
        "Transformer-XL's pad-and-reshape shift": '''
def relative_position_scores(query, key, position, content_bias, position_bias):
    b, n, t, _ = query.shape
    k = key.shape[2]
    content = ops.einsum("bnid,bnjd->bnij", query + content_bias[:, None], key)
    by_distance = ops.einsum("bnid,pnd->bnip", query + position_bias[:, None], position)
    # Row i needs columns T - i .. T - i + K - 1: flattened, that is a stride of K + T - 1 from T.
    flat = ops.reshape(by_distance, (b, n, t * (k + t)))[..., t:]
    return content + ops.reshape(flat, (b, n, t, k + t - 1))[..., :k]
''',
        "the paper's four terms (a) + (b) + (c) + (d), in numpy": '''
def relative_position_scores(query, key, position, content_bias, position_bias):
    query, key, position = (np.asarray(a, "float64") for a in (query, key, position))
    t, k = query.shape[2], key.shape[2]
    m = k - t
    rows = k - (m + np.arange(t)[:, None] - np.arange(k)[None, :])   # [T, K]
    r = np.transpose(position[rows], (2, 0, 1, 3))                    # [n, T, K, d]
    a = np.einsum("bnid,bnjd->bnij", query, key)
    b = np.einsum("bnid,nijd->bnij", query, r)
    c = np.einsum("nd,bnjd->bnj", content_bias, key)[:, :, None, :]
    d = np.einsum("nd,nijd->nij", position_bias, r)[None]
    return (a + b + c + d).astype("float32")
''',
        "loops over queries and keys": '''
def relative_position_scores(query, key, position, content_bias, position_bias):
    query, key, position = np.asarray(query), np.asarray(key), np.asarray(position)
    t, k = query.shape[2], key.shape[2]
    m = k - t
    scores = np.zeros(query.shape[:2] + (t, k), "float32")
    for i in range(t):
        for j in range(k):
            r = position[k - (m + i - j)]                               # [n, d]
            scores[:, :, i, j] = (np.sum((query[:, :, i] + content_bias) * key[:, :, j], axis=-1)
                                  + np.sum((query[:, :, i] + position_bias) * r, axis=-1))
    return scores
''',
    },
    "RelativeMemoryAttention": {
        "the projections written out with ops.einsum on the layers' kernels, a numpy mask": '''
class RelativeMemoryAttention(RelativeMemoryAttention):
    def call(self, segment, memory, position_encoding):
        m, t = memory.shape[1], segment.shape[1]
        context = ops.concatenate([ops.stop_gradient(memory), segment], axis=1)
        query = ops.einsum("btH,Hnd->bntd", segment, self.query_dense.kernel)
        key = ops.einsum("btH,Hnd->bntd", context, self.key_dense.kernel)
        value = ops.einsum("btH,Hnd->bntd", context, self.value_dense.kernel)
        position = ops.einsum("pH,Hnd->pnd", position_encoding, self.position_dense.kernel)
        scores = relative_position_scores(query, key, position, self.content_bias, self.position_bias)
        visible = np.tril(np.ones((t, m + t), bool), k=m)
        weights = ops.softmax(ops.where(visible, scores * self.head_dim ** -0.5, -np.inf), axis=-1)
        return ops.einsum("bnij,bnjd,Hnd->biH", weights, value, self.output_dense.kernel)
''',
        "a Python loop over the heads": '''
class RelativeMemoryAttention(RelativeMemoryAttention):
    def call(self, segment, memory, position_encoding):
        m, t = memory.shape[1], segment.shape[1]
        context = ops.concatenate([ops.stop_gradient(memory), segment], axis=1)
        query, key, value = self.query_dense(segment), self.key_dense(context), self.value_dense(context)
        position = self.position_dense(position_encoding)
        visible = np.arange(m + t)[None, :] <= m + np.arange(t)[:, None]
        outputs = []
        for h in range(self.num_heads):
            one = slice(h, h + 1)
            scores = relative_position_scores(ops.swapaxes(query[:, :, one], 1, 2),
                                              ops.swapaxes(key[:, :, one], 1, 2), position[:, one],
                                              self.content_bias[one], self.position_bias[one])
            weights = ops.softmax(ops.where(visible, scores[:, 0] / np.sqrt(self.head_dim), -1e9))
            outputs.append(ops.matmul(weights, value[:, :, h]))
        return self.output_dense(ops.stack(outputs, axis=2))
''',
        "memory and segment projected apart (the memory under stop_gradient first), an additive mask": '''
class RelativeMemoryAttention(RelativeMemoryAttention):
    def call(self, segment, memory, position_encoding):
        m, t = memory.shape[1], segment.shape[1]
        memory = ops.stop_gradient(memory)
        query = ops.transpose(self.query_dense(segment), (0, 2, 1, 3))
        key, value = (ops.transpose(ops.concatenate([dense(memory), dense(segment)], axis=1), (0, 2, 1, 3))
                      for dense in (self.key_dense, self.value_dense))
        scores = relative_position_scores(query, key, self.position_dense(position_encoding),
                                          self.content_bias, self.position_bias)
        hidden = np.triu(np.full((t, m + t), -1e9, "float32"), k=m + 1)  # keys after position M + i
        weights = ops.softmax(scores / np.sqrt(self.head_dim) + hidden)
        return self.output_dense(ops.einsum("bnij,bnjd->bind", weights, value))
''',
    },
    "span_corruption": {
        "vectorised numpy with np.insert": '''
def span_corruption(token_ids, noise_mask, sentinels):
    token_ids, noise_mask = np.asarray(token_ids), np.asarray(noise_mask, bool)
    starts = noise_mask & ~np.concatenate([[False], noise_mask[:-1]])
    marked = np.where(starts, np.asarray(sentinels)[np.maximum(np.cumsum(starts) - 1, 0)], token_ids)
    inputs = marked[~noise_mask | starts]
    targets = np.insert(token_ids[noise_mask], np.flatnonzero(starts[noise_mask]),
                        np.asarray(sentinels)[: starts.sum()])
    return inputs, targets
''',
        "runs of the mask with itertools.groupby": '''
def span_corruption(token_ids, noise_mask, sentinels):
    import itertools
    input_ids, target_ids, span = [], [], 0
    pairs = zip(np.asarray(token_ids).tolist(), np.asarray(noise_mask).tolist())
    for noisy, run in itertools.groupby(pairs, key=lambda pair: pair[1]):
        tokens = [token for token, _ in run]
        if noisy:
            input_ids.append(int(sentinels[span]))
            target_ids += [int(sentinels[span])] + tokens
            span += 1
        else:
            input_ids += tokens
    return np.array(input_ids), np.array(target_ids)
''',
        "split at the mask's changes with np.diff": '''
def span_corruption(token_ids, noise_mask, sentinels):
    noise_mask = np.asarray(noise_mask).astype(int)
    cuts = np.flatnonzero(np.diff(noise_mask)) + 1
    pieces = np.split(np.asarray(token_ids), cuts)
    noisy = [bool(piece_mask[0]) for piece_mask in np.split(noise_mask, cuts)]
    input_ids, target_ids = [], []
    for number, piece in enumerate(p for p, n in zip(pieces, noisy) if n):
        target_ids += [sentinels[number], *piece]
    spans = iter(sentinels)
    for piece, is_noise in zip(pieces, noisy):
        input_ids += [next(spans)] if is_noise else list(piece)
    return np.array(input_ids, "int64"), np.array(target_ids, "int64")
''',
    },
    "distillation_loss": {
        "numpy in float64 with explicit softmaxes": '''
def distillation_loss(student_logits, teacher_logits, temperature, weights):
    def softmax(z):
        z = np.asarray(z, "float64") / temperature
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    p, q = softmax(teacher_logits), softmax(student_logits)
    kl = np.sum(p * (np.log(p) - np.log(q)), axis=-1)
    return np.float32(temperature ** 2 * np.sum(kl * weights) / np.sum(weights))
''',
        "cross-entropy minus the teacher's entropy, with keras.losses": '''
def distillation_loss(student_logits, teacher_logits, temperature, weights):
    teacher_probs = ops.softmax(teacher_logits / temperature, axis=-1)
    cross_entropy = keras.losses.categorical_crossentropy(teacher_probs, student_logits / temperature,
                                                          from_logits=True)
    entropy = -ops.sum(teacher_probs * ops.log_softmax(teacher_logits / temperature, axis=-1), axis=-1)
    kl = cross_entropy - entropy
    return temperature * temperature * ops.sum(kl * weights) / ops.sum(weights)
''',
        "a Python loop over the predictions that count": '''
def distillation_loss(student_logits, teacher_logits, temperature, weights):
    classes = np.asarray(student_logits).shape[-1]
    student = np.reshape(student_logits, (-1, classes)) / temperature
    teacher = np.reshape(teacher_logits, (-1, classes)) / temperature
    total, count = 0.0, 0.0
    for s, t, w in zip(student, teacher, np.reshape(weights, -1)):
        if w:
            log_p = t - np.log(np.sum(np.exp(t - t.max()))) - t.max()
            log_q = s - np.log(np.sum(np.exp(s - s.max()))) - s.max()
            total += w * np.sum(np.exp(log_p) * (log_p - log_q))
            count += w
    return np.float32(temperature ** 2 * total / count)
''',
    },
}
