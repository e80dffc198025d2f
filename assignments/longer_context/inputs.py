"""Graded inputs of the longer-context assignment (drawn fresh from a seed at grading time).

Each case's docstring says what it exercises; its inputs are built so that it
does, whatever the seed: batches above one, memory lengths other than the
segment length (longer and shorter), an empty memory (a text's first segment),
head counts, head widths and lengths all different, a layer's gradients with
respect to its memory (which must be zero), noise spans at both ends
of a sequence and of length one, temperatures other than one, unused
prediction slots.
"""

import numpy as np


def _normal(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype("float32")


def memory_updates(rng):
    """Four updates of a batch of two or three: a memory longer than the segment (the old memory's
    newest states are kept before the segment), one shorter (only the segment's last states), a
    text's first segment (an empty memory [B, 0, H], M > T: the whole segment, fewer than M states),
    and a memory not yet full (old memory of T states, M > 2T: everything kept)."""
    batch, hidden = int(rng.integers(2, 4)), int(rng.integers(4, 9))
    segment = int(rng.integers(3, 7))
    longer = segment + int(rng.integers(2, 6))
    shorter = int(rng.integers(2, segment))
    return [
        dict(memory=_normal(rng, batch, longer, hidden), layer_input=_normal(rng, batch, segment, hidden),
             memory_length=longer),
        dict(memory=_normal(rng, batch, shorter, hidden), layer_input=_normal(rng, batch, segment, hidden),
             memory_length=shorter),
        dict(memory=_normal(rng, batch, 0, hidden), layer_input=_normal(rng, batch, segment, hidden),
             memory_length=longer),
        dict(memory=_normal(rng, batch, segment, hidden), layer_input=_normal(rng, batch, segment, hidden),
             memory_length=2 * segment + int(rng.integers(1, 4))),
    ]


def _attention_call(rng, batch, memory_length, segment_length, hidden, head_dim):
    return dict(segment=_normal(rng, batch, segment_length, hidden),
                memory=_normal(rng, batch, memory_length, hidden),
                query_kernel=_normal(rng, hidden, head_dim, scale=hidden ** -0.5),
                key_kernel=_normal(rng, hidden, head_dim, scale=hidden ** -0.5),
                value_kernel=_normal(rng, hidden, head_dim, scale=hidden ** -0.5))


def memory_attention_calls(rng):
    """Three calls of a batch of two or three: a memory longer than the segment, one shorter (both
    at least two states, the segment at least three, so a mask without the memory offset or with
    the segment length as the offset hides keys the query may read), and an empty memory (a text's
    first segment: plain causal attention). Hidden width and head width differ."""
    batch, hidden, head_dim = int(rng.integers(2, 4)), int(rng.integers(6, 10)), int(rng.integers(3, 6))
    segment = int(rng.integers(3, 7))
    return [
        _attention_call(rng, batch, segment + int(rng.integers(1, 5)), segment, hidden, head_dim),
        _attention_call(rng, batch, int(rng.integers(2, segment)), segment, hidden, head_dim),
        _attention_call(rng, batch, 0, segment, hidden, head_dim),
    ]


def _relative_call(rng, batch, heads, head_dim, memory_length, segment_length):
    key_length = memory_length + segment_length
    return dict(query=_normal(rng, batch, heads, segment_length, head_dim),
                key=_normal(rng, batch, heads, key_length, head_dim),
                position=_normal(rng, key_length + segment_length, heads, head_dim),
                content_bias=_normal(rng, heads, head_dim),
                position_bias=_normal(rng, heads, head_dim))


def relative_score_calls(rng):
    """Two calls of a batch of two with two or three heads: a memory longer than the segment and
    one shorter (at least one state). Batch, heads, head width, segment and memory lengths all
    differ; u and v are distinct non-zero vectors, so swapping or dropping either changes every
    score, and every query reads keys at several distances."""
    heads, head_dim = int(rng.integers(2, 4)), int(rng.integers(4, 7))
    segment = int(rng.integers(3, 6))
    return [_relative_call(rng, 2, heads, head_dim, segment + int(rng.integers(1, 4)), segment),
            _relative_call(rng, 2, heads, head_dim, int(rng.integers(1, segment)), segment)]


def relative_attention_layer(rng):
    """The whole layer with the grader's weights, outputs and gradients (with respect to the
    segment, the memory, the position encodings and every weight), two calls: a memory longer than
    the segment and one shorter, both non-empty, so a mask without the memory offset or offset by
    the segment length changes what a query reads, and a memory read without stop_gradient gets a
    gradient where the reference's is zero. Batch, heads, head width, segment and memory lengths all
    differ; u and v are distinct non-zero vectors and every row of the position encodings is a
    random vector of its own, so a bias on the wrong term or a row taken for the wrong distance
    changes every score."""
    batch, heads = (int(n) for n in rng.permutation([2, 3]))
    head_dim = int(rng.integers(4, 7))
    hidden = heads * head_dim
    weights = [_normal(rng, heads, head_dim, scale=0.5), _normal(rng, heads, head_dim, scale=0.5)]  # u, v
    weights += [_normal(rng, hidden, heads, head_dim, scale=hidden ** -0.5)  # query, key, value, W_r, output
                for _ in range(5)]
    segment = head_dim + int(rng.integers(1, 4))
    shorter = [m for m in range(1, segment) if m not in (batch, heads, head_dim)]
    calls = []
    for memory in (segment + int(rng.integers(1, 4)), int(rng.choice(shorter))):
        calls.append(dict(config=dict(num_heads=heads, hidden_dim=hidden), weights=weights,
                          inputs=dict(segment=_normal(rng, batch, segment, hidden),
                                      memory=_normal(rng, batch, memory, hidden),
                                      position_encoding=_normal(rng, memory + 2 * segment, hidden)),
                          output_gradient=_normal(rng, batch, segment, hidden)))
    return calls


def _noise_mask(rng, span_lengths, gaps):
    """A bool mask: gaps[0] kept tokens, span 0, gaps[1] kept tokens, span 1, ..., gaps[-1] kept tokens."""
    pieces = []
    for gap, span in zip(gaps[:-1], span_lengths):
        pieces += [np.zeros(gap, bool), np.ones(span, bool)]
    return np.concatenate(pieces + [np.zeros(gaps[-1], bool)])


def _span_call(rng, at_the_ends):
    """One sequence with three to five noise spans, one of length one and one longer; with
    `at_the_ends` the first and the last token are noise, else both are kept."""
    count = int(rng.integers(3, 6))
    span_lengths = rng.integers(1, 5, size=count)
    span_lengths[rng.permutation(count)[:2]] = 1, int(rng.integers(2, 5))
    gaps = rng.integers(1, 4, size=count + 1)
    if at_the_ends:
        gaps[0] = gaps[-1] = 0
    noise_mask = _noise_mask(rng, span_lengths, gaps)
    vocabulary_size = int(rng.integers(60, 200))
    sentinels = (vocabulary_size - 1 - np.arange(count + int(rng.integers(1, 4)))).astype("int32")
    token_ids = rng.integers(1, sentinels[-1], size=len(noise_mask)).astype("int32")
    return dict(token_ids=token_ids, noise_mask=noise_mask, sentinels=sentinels)


def span_corruption_calls(rng):
    """Two sequences: one whose first and last tokens are both noise (spans at the sequence ends),
    one whose ends are kept; each with three to five spans, one of length one and one longer, and
    more sentinel ids than spans."""
    return [_span_call(rng, at_the_ends=True), _span_call(rng, at_the_ends=False)]


def distillation_calls(rng):
    """Two calls at different temperatures, both above one: masked-LM-style logits [B, P, C] with
    unused prediction slots (weight 0) in every row, and a classifier's logits [B, C] with every
    weight 1. Teacher and student logits are independent draws, so their KL is far from zero."""
    temperatures = rng.choice([1.5, 2.0, 3.0, 4.0], size=2, replace=False)
    batch, slots, classes = int(rng.integers(2, 4)), int(rng.integers(3, 6)), int(rng.integers(5, 9))
    weights = (rng.random((batch, slots)) < 0.6).astype("float32")
    weights[:, 0], weights[:, -1] = 1.0, 0.0  # every row has a used and an unused slot
    labels = int(rng.integers(2, 5))
    return [
        dict(student_logits=_normal(rng, batch, slots, classes, scale=2.0),
             teacher_logits=_normal(rng, batch, slots, classes, scale=3.0),
             temperature=float(temperatures[0]), weights=weights),
        dict(student_logits=_normal(rng, batch + 2, labels, scale=2.0),
             teacher_logits=_normal(rng, batch + 2, labels, scale=3.0),
             temperature=float(temperatures[1]), weights=np.ones(batch + 2, "float32")),
    ]


CASES = {
    "longer_context.memory_update": memory_updates,
    "longer_context.memory_attention": memory_attention_calls,
    "longer_context.relative_scores": relative_score_calls,
    "longer_context.layer": relative_attention_layer,
    "longer_context.span_corruption": span_corruption_calls,
    "longer_context.distillation": distillation_calls,
}
