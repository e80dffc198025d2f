"""Text-to-text fine-tuning (T5): every task is text in, text out.

    "sst2 sentence: a gripping , funny film ."          ->  "positive"
    "stsb sentence1: A man plays. sentence2: A man sings."  ->  "1.6"

A classification task becomes generation: the input names the task, the
target is the label as a word; STS-B's score is written as a number rounded
to the nearest 0.2 (T5's formats, `TASK_FORMATS`). Training is teacher
forcing: the decoder reads the target shifted right behind a start token and
learns to predict each next target token (`seq2seq_arrays`, then `fit` after
`gpt.compile_causal_lm`, the same cross-entropy over real target tokens).
Evaluation decodes greedily with the key/value cache (`t5.generate`, through
`greedy_answers`) and reads the text written back (`read_answers`): an answer
that is no label word counts as wrong (`NO_LABEL`), an STS-B answer that is
no number scores `STSB_FALLBACK`.

Tokens: the encoder's `tokenize` / `detokenize`; its `pad_token_id` pads
and starts the decoder (T5's convention), its `sep_token_id` ends each text
(T5's </s>; `[SEP]` in the kit's ALBERT-style vocabularies).
"""

import math

import numpy as np

#: A classification answer that is no label word; scored as a wrong class (`benchmarks.metrics`).
NO_LABEL = -1
#: What an STS-B answer that is no number scores: T5's own default
#: (`t5.data.postprocessors.string_to_float`), below the 0-5 scale, so it counts against the correlation.
STSB_FALLBACK = -1.0

_MNLI = ("mnli hypothesis: {1} premise: {0}", ("contradiction", "entailment", "neutral"))

#: GLUE task -> (its input as T5 writes it, from the example's texts {0}, {1}; the label word of each class id,
#: in the harness's class order (`benchmarks.tasks`), or None for STS-B's number). As T5's GLUE preprocessor
#: writes them: the task's name, then each field as "name: text", fields in alphabetical order (so MNLI's
#: hypothesis comes first); MNLI-mm and AX are read as MNLI, whose model answers them.
TASK_FORMATS = {
    "CoLA": ("cola sentence: {0}", ("unacceptable", "acceptable")),
    "SST-2": ("sst2 sentence: {0}", ("negative", "positive")),
    "MRPC": ("mrpc sentence1: {0} sentence2: {1}", ("not_equivalent", "equivalent")),
    "STS-B": ("stsb sentence1: {0} sentence2: {1}", None),
    "QQP": ("qqp question1: {0} question2: {1}", ("not_duplicate", "duplicate")),
    "MNLI-m": _MNLI,
    "MNLI-mm": _MNLI,
    "AX": _MNLI,
    "QNLI": ("qnli question: {0} sentence: {1}", ("entailment", "not_entailment")),
    "RTE": ("rte sentence1: {0} sentence2: {1}", ("entailment", "not_entailment")),
    "WNLI": ("wnli sentence1: {0} sentence2: {1}", ("not_entailment", "entailment")),
}


def task_format(task):
    """(input template, label words or None) of a GLUE task."""
    if task not in TASK_FORMATS:
        raise ValueError(f"No text-to-text format for {task!r}; add one to TASK_FORMATS "
                         f"(have {sorted(TASK_FORMATS)}).")
    return TASK_FORMATS[task]


def score_text(score):
    """An STS-B score as T5 writes it: rounded to the nearest 0.2, with one decimal ("3.8")."""
    return f"{round(float(score) * 5) / 5:.1f}"


def target_texts(task):
    """Every target a task has: its label words, or STS-B's 26 numbers "0.0", "0.2", ..., "5.0"."""
    label_words = task_format(task)[1]
    return label_words if label_words is not None else tuple(score_text(step / 5) for step in range(26))


def glue_as_text(task, texts, labels=None):
    """GLUE examples as (input texts, target texts): "sst2 sentence: ..." -> "positive".

    `texts` holds one tuple of strings per example (`benchmarks.tasks.Examples.texts`);
    targets are None without labels.
    """
    template, label_words = task_format(task)
    inputs = [template.format(*(text.strip() for text in example)) for example in texts]
    if labels is None:
        return inputs, None
    if label_words is None:
        return inputs, [score_text(label) for label in labels]
    return inputs, [label_words[int(label)] for label in labels]


def read_answers(task, answers):
    """Answers (strings) as predictions: class ids, `NO_LABEL` for an answer that is no label word;
    for STS-B the number written, `STSB_FALLBACK` for an answer that is no (finite) number."""
    label_words = task_format(task)[1]
    if label_words is None:
        return np.array([parse_score(answer) for answer in answers], "float64")
    class_ids = {word: class_id for class_id, word in enumerate(label_words)}
    return np.array([class_ids.get(answer, NO_LABEL) for answer in answers], "int64")


def parse_score(answer):
    try:
        score = float(answer)
    except ValueError:
        return STSB_FALLBACK
    return score if math.isfinite(score) else STSB_FALLBACK


def target_length(encoder, task):
    """Tokens of the task's longest target plus the end token: the length answers are written in.

    Raises ValueError when the encoder cannot write a target (its tokens do not read back as it, e.g.
    a character missing from the vocabulary): no answer could ever be that label.
    """
    texts = target_texts(task)
    tokens = encoder.tokenize(list(texts))
    unwritable = {text: back for text, back in zip(texts, answer_texts(encoder, tokens)) if back != text}
    if unwritable:
        raise ValueError(
            f"The tokenizer cannot write the {task} targets {sorted(unwritable)} (they read back as "
            f"{[unwritable[text] for text in sorted(unwritable)]}), so no answer could be them. Train it on text "
            f"that has them (reference_impl.text_to_text.target_texts({task!r})), or use T5's own vocabulary.")
    return 1 + max(len(ids) for ids in tokens)


def pack(token_lists, length, end_id, pad_id):
    """Rows of `length` ids: tokens (cut to fit) + the end token, then padding; and the mask."""
    ids = np.full((len(token_lists), length), pad_id, "int32")
    mask = np.zeros((len(token_lists), length), "int32")
    for row, tokens in enumerate(token_lists):
        packed = list(tokens)[: length - 1] + [end_id]
        ids[row, : len(packed)] = packed
        mask[row, : len(packed)] = 1
    return ids, mask


def input_arrays(encoder, inputs, input_length):
    """`encoder_token_ids` (each input's tokens + the end token) and `encoder_padding_mask`."""
    ids, mask = pack(encoder.tokenize(inputs), input_length, encoder.sep_token_id, encoder.pad_token_id)
    return {"encoder_token_ids": ids, "encoder_padding_mask": mask}


def seq2seq_arrays(encoder, inputs, targets, input_length, target_length):
    """(x, y, sample_weight) for teacher forcing.

    x: `encoder_token_ids` and `encoder_padding_mask` (the input + end
    token), `decoder_token_ids` and `decoder_padding_mask` (start token +
    the target, shifted right); y: the target + end token [B,
    target_length]; sample_weight: 1 on real target tokens.
    """
    pad, end = encoder.pad_token_id, encoder.sep_token_id
    labels, label_mask = pack(encoder.tokenize(targets), target_length, end, pad)
    # The decoder sees, at position i, the target up to token i - 1.
    decoder_ids = np.concatenate([np.full((len(labels), 1), pad, "int32"), labels[:, :-1]], axis=1)
    decoder_mask = np.concatenate([np.ones((len(labels), 1), "int32"), label_mask[:, :-1]], axis=1)
    x = dict(input_arrays(encoder, inputs, input_length), decoder_token_ids=decoder_ids,
             decoder_padding_mask=decoder_mask)
    return x, labels, label_mask.astype("float32")


def greedy_answers(seq2seq_lm, encoder_token_ids, encoder_padding_mask, max_length, start_token_id,
                   end_token_id, batch_size=64):
    """Token ids [N, max_length - 1] of the greedy answers (`t5.generate`, with the cache), without
    the start token; a row that ended early is padded with the start token (T5's pad).

    Needs only the arrays and Keras, so it runs where there is no tokenizer (a harness job).
    """
    # Imported here: the formats, `read_answers` and `NO_LABEL` need numpy alone (the harness's metrics read them).
    from reference_impl.t5 import generate

    rows = []
    for start in range(0, len(encoder_token_ids), batch_size):
        part = slice(start, start + batch_size)
        decoded, _ = generate(seq2seq_lm, encoder_token_ids[part], encoder_padding_mask[part], max_length,
                              start_token_id=start_token_id, end_token_id=end_token_id,
                              pad_token_id=start_token_id)
        rows.append(decoded[:, 1:])
    return np.concatenate(rows)


def answer_texts(encoder, answer_ids):
    """The text of each row of answer ids, up to its first end token.

    Ids past the tokenizer's pieces (a model's embedding may be larger: T5's sentinels follow its
    32,000 pieces) read as the unknown token, so such an answer is no label word.
    """
    texts = []
    for row in map(np.asarray, answer_ids):
        stop = np.flatnonzero(row == encoder.sep_token_id)
        row = row[: stop[0] if len(stop) else len(row)]
        row = np.where(row < encoder.vocabulary_size, row, encoder.unk_token_id)
        texts.append(encoder.detokenize(row).strip())
    return texts


def predict_texts(seq2seq_lm, encoder, inputs, input_length, max_length=8, batch_size=64):
    """Greedy answers (strings) to `inputs`, decoding at most `max_length` - 1 tokens each."""
    x = input_arrays(encoder, inputs, input_length)
    answer_ids = greedy_answers(seq2seq_lm, x["encoder_token_ids"], x["encoder_padding_mask"], max_length,
                                encoder.pad_token_id, encoder.sep_token_id, batch_size)
    return answer_texts(encoder, answer_ids)


def label_accuracy(answers, targets):
    """Share of answers that are exactly the target label word."""
    return float(np.mean([a == t for a, t in zip(answers, targets, strict=True)]))
