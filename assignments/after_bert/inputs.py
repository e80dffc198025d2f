"""Graded inputs of the after-BERT assignment (drawn fresh from a seed at grading time).

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed. Sizes and counts are plain Python ints, as a notebook
passes them.
"""

import numpy as np

MASK_ID = 4  # ids 0-4 are [PAD], [UNK], [CLS], [SEP], [MASK]; words start at 5


def gradient_accumulation(rng):
    """Micro-batches holding different numbers of real tokens (one holds many, and it is
    not the last), so a plain mean of their gradients differs from the large-batch one."""
    calls = []
    for steps in (int(rng.integers(3, 6)), 2):
        counts = rng.integers(1, 40, size=steps)
        counts[0] = int(rng.integers(60, 120))
        gradients = rng.standard_normal((steps, int(rng.integers(2, 5)), 3)).astype("float32")
        calls.append(dict(micro_gradients=gradients, token_counts=counts.astype("int32")))
    return calls


def albert_counts(rng):
    """One shared group, two groups and no sharing, on small sizes (a missed bias, a few
    parameters, is far beyond the tolerance); E < H, and every size differs from the others."""
    vocabulary_size = int(rng.integers(40, 80))
    max_sequence_length = int(rng.integers(10, 20))
    embedding_dim, hidden_dim = int(rng.choice([3, 5])), int(rng.choice([8, 12]))
    intermediate_dim = int(rng.choice([16, 20]))
    sizes = dict(vocabulary_size=vocabulary_size, max_sequence_length=max_sequence_length,
                 embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                 intermediate_dim=intermediate_dim)
    layers = int(rng.choice([4, 6]))
    return [
        dict(sizes, num_layers=layers, num_groups=1),  # ALBERT: one shared block
        dict(sizes, num_layers=layers, num_groups=2),  # two groups, each applied L/2 times
        dict(sizes, num_layers=3, num_groups=3),       # no sharing at all (BERT-like)
    ]


def factorised_embedding(rng):
    """Token ids looked up in a V x E table, projected to H (E < H, V, T and H all differ)."""
    batch, length = 2, int(rng.integers(4, 8))
    vocabulary, embedding_dim, hidden_dim = int(rng.integers(20, 40)), 3, int(rng.choice([5, 7]))
    return [dict(token_ids=rng.integers(0, vocabulary, size=(batch, length)).astype("int32"),
                 token_table=(0.5 * rng.standard_normal((vocabulary, embedding_dim))).astype("float32"),
                 projection_kernel=rng.standard_normal((embedding_dim, hidden_dim)).astype("float32"),
                 projection_bias=rng.standard_normal(hidden_dim).astype("float32"))]


def replaced_labels(rng):
    """Three rows with 4, 3 and 2 real prediction slots (the others padding, at position 0);
    the generator is right at one real slot of every row, wrong at the others."""
    batch, length, slots, vocabulary = 3, int(rng.integers(9, 14)), 4, int(rng.integers(20, 40))
    original = rng.integers(5, vocabulary, size=(batch, length))
    original[:, 0] = 2  # [CLS]
    positions = np.zeros((batch, slots), dtype="int64")
    weights = np.zeros((batch, slots), dtype="float32")
    counts = [slots, slots - 1, slots - 2]  # rows 1 and 2 end with padding slots (position 0)
    for row, count in enumerate(counts):
        positions[row, :count] = np.sort(rng.choice(np.arange(1, length), size=count, replace=False))
        weights[row, :count] = 1.0
    original_ids = np.take_along_axis(original, positions, axis=1) * (weights > 0)
    # The generator's samples: mostly wrong, right at one real slot of every row, and
    # something other than [CLS] in padding slots (writing them would show).
    offsets = rng.integers(1, vocabulary - 5, size=(batch, slots))
    sampled = 5 + (original_ids - 5 + offsets) % (vocabulary - 5)
    sampled[:, 1] = original_ids[:, 1]
    sampled[weights == 0] = rng.integers(5, vocabulary, size=int((weights == 0).sum()))
    masked = original.copy()
    for row in range(batch):
        masked[row, positions[row][weights[row] > 0]] = MASK_ID
    return [dict(token_ids=masked.astype("int32"), mask_positions=positions.astype("int32"),
                 sampled_ids=sampled.astype("int32"), original_ids=original_ids.astype("int32"),
                 mask_weights=weights)]


def rtd_loss(rng):
    """Rows of different lengths, every row padded, each with replaced and original tokens;
    padding positions carry confident logits (counting them would show)."""
    calls = []
    for batch, length in ((3, int(rng.integers(6, 11))), (2, 4)):
        lengths = rng.integers(2, length, size=batch)  # rows of different lengths, all padded
        lengths[0], lengths[1] = length - 1, rng.integers(2, length - 1)
        padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
        logits = np.clip(2 * rng.standard_normal((batch, length)), -6, 6)
        logits = np.where(padding_mask == 1, logits, 5.0 + rng.random((batch, length)))
        is_replaced = (rng.random((batch, length)) < 0.3).astype("float32")
        is_replaced[:, 1] = 1.0  # every row has a replaced and an original token
        is_replaced[:, 0] = 0.0
        calls.append(dict(logits=logits.astype("float32"), is_replaced=is_replaced,
                          padding_mask=padding_mask))
    return calls


def discriminator_head(rng):
    """The whole head and its loss with the grader's weights: the loss, the logits and the loss's
    gradients, two calls; rows of different lengths, every row padded, each with replaced and
    original tokens; padding positions carry large hidden vectors (counting them would show);
    batch, length and width all differ; every bias non-zero."""
    calls = []
    for batch, length, hidden in ((3, int(rng.integers(6, 10)), 10), (2, 5, 12)):
        lengths = rng.permutation([length - 1, *rng.integers(2, length - 1, size=batch - 1)])
        padding_mask = (np.arange(length)[None, :] < lengths[:, None]).astype("int32")
        sequence_output = rng.standard_normal((batch, length, hidden)) * np.where(padding_mask, 1.0, 5.0)[..., None]
        is_replaced = (rng.random((batch, length)) < 0.3).astype("int32")
        is_replaced[:, 0], is_replaced[:, 1] = 0, 1  # every row has an original and a replaced token
        weights = [rng.standard_normal((hidden, hidden)) / np.sqrt(hidden), 0.1 * rng.standard_normal(hidden),
                   rng.standard_normal((hidden, 1)) / np.sqrt(hidden), 0.5 + 0.1 * rng.standard_normal(1)]
        calls.append(dict(config=dict(hidden_dim=hidden), weights=[w.astype("float32") for w in weights],
                          inputs=dict(sequence_output=sequence_output.astype("float32"), is_replaced=is_replaced,
                                      padding_mask=padding_mask),
                          output_gradient=np.array(1.0 + rng.random(), dtype="float32")))
    return calls


CASES = {
    "after_bert.gradient_accumulation": gradient_accumulation,
    "after_bert.albert_counts": albert_counts,
    "after_bert.factorised_embedding": factorised_embedding,
    "after_bert.replaced_labels": replaced_labels,
    "after_bert.rtd_loss": rtd_loss,
    "after_bert.discriminator_head": discriminator_head,
}
