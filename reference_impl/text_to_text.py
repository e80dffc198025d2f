"""Text-to-text fine-tuning (T5): every task is text in, text out.

    "sst2 sentence: a gripping , funny film ."  ->  "positive"

A classification task becomes generation: the input names the task, the
target is the label as a word (T5's formats, `TASK_FORMATS`). Training is
teacher forcing: the decoder reads the target shifted right behind a start
token and learns to predict each next target token (`seq2seq_arrays`,
then `fit` after `gpt.compile_causal_lm`, the same cross-entropy over real
target tokens). Evaluation decodes greedily (`t5.generate`) and compares the
text written with the label word (`predict_texts`, `label_accuracy`): an
answer that is no label word counts as wrong.

Tokens: the encoder's `tokenize` / `detokenize`; its `pad_token_id` pads
and starts the decoder (T5's convention), its `sep_token_id` ends each text
(T5's </s>).
"""

import numpy as np

from reference_impl.t5 import generate

#: GLUE task -> (how its texts read, label words by class id), as in T5's preprocessors.
TASK_FORMATS = {
    "SST-2": (("sst2 sentence",), ("negative", "positive")),
    "CoLA": (("cola sentence",), ("unacceptable", "acceptable")),
    "MRPC": (("mrpc sentence1", "sentence2"), ("not_equivalent", "equivalent")),
    "RTE": (("rte sentence1", "sentence2"), ("entailment", "not_entailment")),
    "QNLI": (("qnli question", "sentence"), ("entailment", "not_entailment")),
}


def glue_as_text(task, texts, labels=None):
    """GLUE examples as (input texts, target texts): "sst2 sentence: ..." -> "positive".

    `texts` holds one tuple of strings per example (`benchmarks.tasks.Examples.texts`).
    """
    if task not in TASK_FORMATS:
        raise ValueError(f"No text-to-text format for {task!r}; add one to TASK_FORMATS "
                         f"(have {sorted(TASK_FORMATS)}).")
    fields, label_words = TASK_FORMATS[task]
    inputs = [" ".join(f"{field}: {text.strip()}" for field, text in zip(fields, example, strict=True))
              for example in texts]
    targets = None if labels is None else [label_words[int(label)] for label in labels]
    return inputs, targets


def pack(token_lists, length, end_id, pad_id):
    """Rows of `length` ids: tokens (cut to fit) + the end token, then padding; and the mask."""
    ids = np.full((len(token_lists), length), pad_id, "int32")
    mask = np.zeros((len(token_lists), length), "int32")
    for row, tokens in enumerate(token_lists):
        packed = list(tokens)[: length - 1] + [end_id]
        ids[row, : len(packed)] = packed
        mask[row, : len(packed)] = 1
    return ids, mask


def seq2seq_arrays(encoder, inputs, targets, input_length, target_length):
    """(x, y, sample_weight) for teacher forcing.

    x: `encoder_token_ids` and `encoder_padding_mask` (the input + end
    token), `decoder_token_ids` and `decoder_padding_mask` (start token +
    the target, shifted right); y: the target + end token [B,
    target_length]; sample_weight: 1 on real target tokens.
    """
    pad, end = encoder.pad_token_id, encoder.sep_token_id
    encoder_ids, encoder_mask = pack(encoder.tokenize(inputs), input_length, end, pad)
    target_tokens = encoder.tokenize(targets)
    labels, label_mask = pack(target_tokens, target_length, end, pad)
    # The decoder sees, at position i, the target up to token i - 1.
    decoder_ids = np.concatenate([np.full((len(labels), 1), pad, "int32"), labels[:, :-1]], axis=1)
    decoder_mask = np.concatenate([np.ones((len(labels), 1), "int32"), label_mask[:, :-1]], axis=1)
    x = {"encoder_token_ids": encoder_ids, "encoder_padding_mask": encoder_mask,
         "decoder_token_ids": decoder_ids, "decoder_padding_mask": decoder_mask}
    return x, labels, label_mask.astype("float32")


def predict_texts(seq2seq_lm, encoder, inputs, input_length, max_length=8, batch_size=64):
    """Greedy answers (strings) to `inputs`, decoding at most `max_length` - 1 tokens each."""
    pad, end = encoder.pad_token_id, encoder.sep_token_id
    answers = []
    for start in range(0, len(inputs), batch_size):
        ids, mask = pack(encoder.tokenize(inputs[start:start + batch_size]), input_length, end, pad)
        decoded, _ = generate(seq2seq_lm, ids, mask, max_length, start_token_id=pad,
                              end_token_id=end, pad_token_id=pad)
        for row in decoded[:, 1:]:
            stop = np.flatnonzero(row == end)
            answers.append(encoder.detokenize(row[: stop[0] if len(stop) else len(row)]).strip())
    return answers


def label_accuracy(answers, targets):
    """Share of answers that are exactly the target label word."""
    return float(np.mean([a == t for a, t in zip(answers, targets, strict=True)]))
