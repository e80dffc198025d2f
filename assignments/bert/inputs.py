"""Graded inputs of the BERT assignment (drawn fresh from a seed at grading time).

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed.
"""

import numpy as np

FIRST_WORD_ID = 5  # ids 0-4 are [PAD], [UNK], [CLS], [SEP], [MASK]


def _uniform_away_from(rng, shape, edges, margin=0.01):
    """Uniform draws in [0, 1) never within `margin` of an edge (float32 rounding stays moot)."""
    draws = rng.random(shape)
    for edge in edges:
        close = np.abs(draws - edge) < margin
        draws[close] = edge + np.where(draws[close] < edge, -2, 2) * margin
    return draws.astype("float32")


def corruption(rng):
    """Three sequences where every kind of corruption happens (a [MASK], a random token that
    differs from the original, a kept token), no draw near the 0.8 and 0.9 boundaries, and
    tokens that were not selected with draws of each kind."""
    batch, length, vocabulary = 3, int(rng.integers(12, 21)), int(rng.integers(30, 60))
    token_ids = rng.integers(FIRST_WORD_ID, vocabulary, size=(batch, length))
    selected = rng.random((batch, length)) < 0.5
    selected[0, 1:4] = True
    selected[1, 1:4] = False
    draws = _uniform_away_from(rng, (batch, length), (0.8, 0.9))
    # Every kind of corruption happens at least once: a [MASK], a random token, a kept token;
    # and tokens that were not selected have draws of each kind too (they stay as they are).
    rows, columns = np.nonzero(selected)
    for i, draw in enumerate((0.3, 0.85, 0.95)):
        draws[rows[i], columns[i]] = draw
    draws[1, 1:4] = 0.3, 0.85, 0.95
    # A random replacement never equals the original token, so "random" and "kept" differ.
    offset = rng.integers(1, vocabulary - FIRST_WORD_ID, size=(batch, length))
    random_ids = FIRST_WORD_ID + (token_ids - FIRST_WORD_ID + offset) % (vocabulary - FIRST_WORD_ID)
    return [dict(token_ids=token_ids.astype("int32"), selected=selected, draws=draws,
                 random_ids=random_ids.astype("int32"), mask_token_id=int(rng.integers(1, 5)))]


def _prediction_slots(rng, batch, predictions, vocabulary):
    logits = (2 * rng.standard_normal((batch, predictions, vocabulary))).astype("float32")
    counts = rng.choice(np.arange(1, predictions), size=batch, replace=False)
    while counts.sum() in (batch, predictions):  # so no other divisor gives the mean
        counts = rng.choice(np.arange(1, predictions), size=batch, replace=False)
    weights = (np.arange(predictions)[None, :] < counts[:, None]).astype("float32")
    labels = rng.integers(1, vocabulary, size=(batch, predictions))
    return dict(logits=logits, labels=labels.astype("int32"), weights=weights)


def masked_lm_loss(rng):
    """Prediction slots of three sequences, each with unused (padding) slots, in different
    numbers (as many in all as neither the batch size nor the slots per sequence); the unused
    slots hold non-zero labels (as a batch left over from another step would), so only the
    weights tell them apart. Two draws of different sizes: a scalar may match by chance once."""
    return [_prediction_slots(rng, 3, int(rng.integers(5, 8)), int(rng.integers(9, 14))),
            _prediction_slots(rng, 3, int(rng.integers(8, 11)), int(rng.integers(15, 20)))]


def embeddings(rng):
    """Two sentence pairs (segment 0, then segment 1, split at different places); width,
    length and table sizes all differ, so no axis mix-up goes unseen."""
    batch, length, width = 2, int(rng.integers(5, 9)), int(rng.choice([6, 10]))
    vocabulary, max_length = int(rng.integers(20, 40)), int(rng.integers(12, 16))
    table = lambda rows: (0.2 * rng.standard_normal((rows, width))).astype("float32")
    segment_ids = (np.arange(length)[None, :] >= rng.integers(2, length - 1, size=(batch, 1)))
    return [dict(token_ids=rng.integers(0, vocabulary, size=(batch, length)).astype("int32"),
                 segment_ids=segment_ids.astype("int32"),
                 token_table=table(vocabulary), position_table=table(max_length),
                 segment_table=table(2),
                 gamma=(1 + 0.5 * rng.standard_normal(width)).astype("float32"),
                 beta=(0.5 * rng.standard_normal(width)).astype("float32"))]


def classification_head(rng):
    """A batch of four and a batch of one; the vector at position 0 differs from every other."""
    width, classes = int(rng.choice([5, 8])), 3
    calls = []
    for batch, length in ((4, int(rng.integers(5, 8))), (1, 3)):
        calls.append(dict(sequence_output=rng.standard_normal((batch, length, width)).astype("float32"),
                          kernel=rng.standard_normal((width, classes)).astype("float32"),
                          bias=rng.standard_normal(classes).astype("float32")))
    return calls


def _block_weights(rng, hidden, intermediate):
    """Attention's four Dense layers, a LayerNorm, the feed-forward network's two Dense layers and
    a LayerNorm: kernels, biases and LayerNorm scales all drawn (none at their initial values)."""
    normal = lambda *shape, scale=1.0: (scale * rng.standard_normal(shape)).astype("float32")
    layer_norm = lambda: [1.0 + normal(hidden, scale=0.2), normal(hidden, scale=0.1)]
    weights = []
    for _ in range(4):
        weights += [normal(hidden, hidden, scale=hidden ** -0.5), normal(hidden, scale=0.1)]
    weights += layer_norm()
    weights += [normal(hidden, intermediate, scale=hidden ** -0.5), normal(intermediate, scale=0.1),
                normal(intermediate, hidden, scale=intermediate ** -0.5), normal(hidden, scale=0.1)]
    return weights + layer_norm()


def encoder_block(rng):
    """The whole post-LayerNorm block with the grader's weights, outputs and gradients, two calls:
    padding in every row (rows of different lengths, one with a single real token), so a mask left
    out, inverted or put on the query axis shows; B, T, h, d and the widths all differ."""
    batch, heads, intermediate = 3, 2, 24
    calls = []
    for head_dim in (5, 7):
        hidden, length = heads * head_dim, int(rng.integers(6, 11))
        lengths = rng.choice(np.arange(2, length), size=batch, replace=False)
        lengths[rng.integers(batch)] = 1
        calls.append(dict(config=dict(num_heads=heads, hidden_dim=hidden, intermediate_dim=intermediate),
                          weights=_block_weights(rng, hidden, intermediate),
                          inputs=dict(x=rng.standard_normal((batch, length, hidden)).astype("float32"),
                                      padding_mask=(np.arange(length)[None, :] < lengths[:, None]).astype("int32")),
                          output_gradient=rng.standard_normal((batch, length, hidden)).astype("float32")))
    return calls


CASES = {
    "bert.corruption": corruption,
    "bert.masked_lm_loss": masked_lm_loss,
    "bert.embeddings": embeddings,
    "bert.classification_head": classification_head,
    "bert.encoder_block": encoder_block,
}

# Training outcomes: graded on a held-out split the grader keeps in heldout/ (never released). The
# function is called once on the split's input columns; its predictions are scored against the
# labels in the grader's own process. polarity_test.tsv: 100 sentences of the same documentation
# (6 to 22 words, with one of the auxiliaries is/are/can/may/will/must/should/was), each as written
# (1) and negated by "not" after its first auxiliary (0), none in the training or dev split.
OUTCOMES = {
    "bert.polarity": {"split": "polarity_test.tsv", "inputs": {"sentences": "sentence"}, "labels": "label",
                      "metric": "accuracy", "chance": 0.5, "full_marks_at": 0.9},
}
