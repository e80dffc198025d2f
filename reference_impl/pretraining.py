"""Pretraining data, the masked-LM loss and compiling the encoders' pretrainers.

Data arrives as tokenized documents: a list of documents, each a list of
sentences, each a list of token ids (see `reference_impl.tokenizers`). From
there:

- `sentence_pair_examples` builds BERT's next-sentence-prediction pairs and
  ALBERT's sentence-order-prediction pairs;
- `pack_sentences` builds RoBERTa's FULL-SENTENCES inputs (and GPT's): whole
  sentences packed up to the length limit, crossing document boundaries;
- `MaskedLMDataset` batches those arrays and masks them, either once (static,
  BERT) or anew every epoch (dynamic, RoBERTa);
- `masked_lm_loss` is BERT's MLM loss: cross-entropy averaged over the real
  predictions only;
- `compile_for_pretraining` sets the losses and the optimizer; there is no
  loop of our own, Keras's `model.fit` trains any of the pretrainers. With
  `gradient_accumulation_steps=k` the optimizer averages k micro-batch
  gradients before each update, which equals one k-times larger batch because
  every loss here is a mean over examples.
"""

import math

import keras
import numpy as np

from reference_impl.masking import mask_tokens
from reference_impl.optimization import adamw


def _truncate_pair(first, second, max_tokens):
    """Longest-first truncation, trimming the end of the longer segment."""
    first, second = list(first), list(second)
    while len(first) + len(second) > max_tokens:
        longer = first if len(first) >= len(second) else second
        longer.pop()
    return first, second


def _pack_pair(first, second, sequence_length, cls_id, sep_id, pad_id):
    first, second = _truncate_pair(first, second, sequence_length - 3)
    ids = [cls_id, *first, sep_id, *second, sep_id]
    segments = [0] * (len(first) + 2) + [1] * (len(second) + 1)
    padding = sequence_length - len(ids)
    return ids + [pad_id] * padding, segments + [0] * padding, [1] * len(ids) + [0] * padding


def sentence_pair_examples(documents, sequence_length, cls_id, sep_id, pad_id, rng,
                           objective="nsp"):
    """Sentence pairs labelled for NSP (BERT) or SOP (ALBERT).

    Each document is cut into consecutive chunks that fill about half the
    sequence each, giving segment A and the segment B that follows it.
    - objective="nsp": half the time B is replaced by a chunk from another
      document; label 1 = "B is random", 0 = "B follows A".
    - objective="sop": half the time A and B are swapped; label 1 = "swapped".
      Both halves come from one document, so topic gives nothing away.

    Returns dict of int32 arrays: token_ids, segment_ids, padding_mask [N, T]
    and labels [N].
    """
    if objective not in ("nsp", "sop"):
        raise ValueError(f"objective must be 'nsp' or 'sop', not {objective!r}.")
    half = (sequence_length - 3) // 2
    chunked = [_chunks(document, half) for document in documents]
    all_chunks = [(d, c) for d, chunks in enumerate(chunked) for c in chunks]
    if len(chunked) < 2 or not all_chunks:
        raise ValueError("Sentence-pair objectives need at least two non-empty documents.")
    rows = {"token_ids": [], "segment_ids": [], "padding_mask": [], "labels": []}
    for doc_index, chunks in enumerate(chunked):
        for first, second in zip(chunks, chunks[1:]):
            label = int(rng.random() < 0.5)
            if label and objective == "nsp":
                other_doc, other = all_chunks[rng.integers(len(all_chunks))]
                while other_doc == doc_index:
                    other_doc, other = all_chunks[rng.integers(len(all_chunks))]
                second = other
            elif label:
                first, second = second, first
            ids, segments, mask = _pack_pair(first, second, sequence_length, cls_id, sep_id, pad_id)
            for key, value in zip(rows, (ids, segments, mask, label)):
                rows[key].append(value)
    return {key: np.asarray(value, dtype="int32") for key, value in rows.items()}


def _chunks(sentences, max_tokens):
    """Group consecutive sentences into chunks of at most max_tokens (long ones cut)."""
    chunks, current = [], []
    for sentence in sentences:
        sentence = list(sentence)[:max_tokens]
        if current and len(current) + len(sentence) > max_tokens:
            chunks.append(current)
            current = []
        current = current + sentence
    if current:
        chunks.append(current)
    return chunks


def pack_sentences(documents, sequence_length, start_id, end_id, pad_id,
                   document_separator_id=None):
    """RoBERTa's FULL-SENTENCES packing: whole sentences up to the limit.

    Sentences are taken in order and may cross a document boundary, where
    `document_separator_id` (RoBERTa: </s>) is inserted. Each row is
    `start_id` + sentences + `end_id`, padded; a sentence longer than a row is
    cut. Returns dict of int32 arrays token_ids and padding_mask [N, T].
    """
    budget = sequence_length - 2
    rows, current = [], []
    for index, document in enumerate(documents):
        for position, sentence in enumerate(document):
            sentence = list(sentence)[:budget]
            if current and len(current) + len(sentence) > budget:
                rows.append(current)
                current = []
            # The separator goes with the first sentence of a document, never at a row's start.
            crossing = index and position == 0 and document_separator_id is not None and current
            if crossing and len(current) + 1 + len(sentence) > budget:
                rows.append(current)
                current = []
            current.extend(([document_separator_id] if crossing and current else []) + sentence)
    if current:
        rows.append(current)
    token_ids = np.full((len(rows), sequence_length), pad_id, dtype="int32")
    padding_mask = np.zeros((len(rows), sequence_length), dtype="int32")
    for i, row in enumerate(rows):
        ids = [start_id, *row, end_id]
        token_ids[i, : len(ids)] = ids
        padding_mask[i, : len(ids)] = 1
    return {"token_ids": token_ids, "padding_mask": padding_mask}


class MaskedLMDataset(keras.utils.PyDataset):
    """Batches of masked-LM inputs for `model.fit`, masked statically or dynamically.

    Yields `(x, y, sample_weight)` in the pretrainers' format:
    x = the model inputs (corrupted `token_ids`, `padding_mask`, `segment_ids`
    if given, `mask_positions`), y = {"mlm_logits": original ids, **labels},
    sample_weight = {"mlm_logits": mask_weights, ...}.

    dynamic=True masks each batch afresh, from a generator seeded by
    (seed, epoch, batch index): a sequence gets a new mask every epoch, yet a
    run is reproducible. dynamic=False masks everything once, up front.
    """

    def __init__(self, features, masking, batch_size=32, labels=None, dynamic=True,
                 shuffle=True, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.features = {k: np.asarray(v) for k, v in features.items()}
        self.masking = dict(masking)
        self.batch_size = batch_size
        self.labels = {k: np.asarray(v) for k, v in (labels or {}).items()}
        self.dynamic = dynamic
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_examples = len(self.features["token_ids"])
        if self.num_examples == 0:
            raise ValueError("No pretraining examples: is the corpus empty or the sequence length too short?")
        self.static_masks = None if dynamic else self._mask(np.arange(self.num_examples),
                                                            np.random.default_rng([seed]))
        self._order = self._permutation()

    def _permutation(self):
        if not self.shuffle:
            return np.arange(self.num_examples)
        return np.random.default_rng([self.seed, self.epoch, 1]).permutation(self.num_examples)

    def _mask(self, indices, rng):
        return mask_tokens(self.features["token_ids"][indices],
                           self.features["padding_mask"][indices], rng=rng, **self.masking)

    def __len__(self):
        return math.ceil(self.num_examples / self.batch_size)

    def __getitem__(self, index):
        indices = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        if self.dynamic:
            masked = self._mask(indices, np.random.default_rng([self.seed, self.epoch, 0, index]))
        else:
            masked = {k: v[indices] for k, v in self.static_masks.items()}
        x = {k: v[indices] for k, v in self.features.items()}
        x["token_ids"] = masked["token_ids"]
        x["mask_positions"] = masked["mask_positions"]
        y = {"mlm_logits": masked["mask_ids"], **{k: v[indices] for k, v in self.labels.items()}}
        sample_weight = {"mlm_logits": masked["mask_weights"],
                         **{k: np.ones(len(indices), "float32") for k in self.labels}}
        return x, y, sample_weight

    def on_epoch_end(self):
        self.epoch += 1
        self._order = self._permutation()


def masked_lm_loss():
    """BERT's masked-LM loss: cross-entropy from logits, averaged over the real predictions.

    `MaskedLMDataset` gives padded prediction slots sample weight 0, so the
    mean is over the weighted targets only, as BERT's loss is. The sentence
    heads (NSP, SOP) use the same loss with weight 1 for every example.
    """
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")


def compile_for_pretraining(model, optimizer=None, **optimizer_args):
    """Compile a pretrainer: `masked_lm_loss` on each of its outputs, AdamW (`adamw`).

    Models with their own `compute_loss` (ELECTRA) are compiled without losses.
    """
    optimizer = optimizer or adamw(**optimizer_args)
    if type(model).compute_loss is not keras.Model.compute_loss:
        model.compile(optimizer=optimizer)
        return model
    model.compile(optimizer=optimizer, loss={name: masked_lm_loss() for name in model.output})
    return model
