"""Pretrain a small model of any family on a corpus, end to end, in minutes on a CPU.

corpus -> tokenizer trained on it -> the family's pretraining examples ->
`model.fit`. The demo and the tests use it; students can read it as the recipe
that ties the pieces of `reference_impl` together. What differs between
families (tokenizer, masking, sentence objective, pretrainer, the small size)
is read from their records in `reference_impl.families`:

| family  | tokenizer     | sentence objective | masking |
|---------|---------------|--------------------|---------|
| bert    | WordPiece     | next sentence      | static  |
| roberta | byte-level BPE| none (packed)      | dynamic |
| albert  | SentencePiece | sentence order     | static  |
| electra | WordPiece     | none (packed)      | dynamic |
| gpt     | byte-level BPE| none (packed)      | none: next-token prediction (`pretrain_decoder`) |
"""

import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np

from reference_impl.corpus import split_sentences, train_validation_split
from reference_impl.families import FAMILIES as MODEL_FAMILIES
from reference_impl.gpt import next_token_batches, perplexity, unigram_perplexity
from reference_impl.pretraining import MaskedLMDataset, pack_sentences, sentence_pair_examples

#: The families `pretrain` trains: the masked-LM encoders and ELECTRA.
FAMILIES = tuple(name for name, family in MODEL_FAMILIES.items()
                 if family.objective in ("masked_lm", "replaced_token_detection"))


def train_encoder(family, documents, vocabulary_size, sequence_length, cache_dir=None):
    """The family's tokenizer trained on `documents` (cached on disk when cache_dir is given)."""
    family = MODEL_FAMILIES[family]
    # Keyed on the tokenizer kind: BERT and ELECTRA share one WordPiece vocabulary.
    key = hashlib.sha256(json.dumps([family.tokenizer, vocabulary_size, documents]).encode()).hexdigest()[:16]
    directory = Path(cache_dir) / f"{family.tokenizer}-{key}" if cache_dir else None
    if directory is not None and directory.exists():
        return family.load_tokenizer(directory, sequence_length)
    encoder = family.train_tokenizer(documents, vocabulary_size, sequence_length)
    if directory is not None:
        encoder.save(directory)
    return encoder


def tokenized_documents(documents, encoder, sentence_prefix=""):
    """Documents as lists of sentences as lists of token ids.

    sentence_prefix=" " keeps the space between packed sentences for byte-level
    BPE, where a word's leading space is part of its token.
    """
    sentences = [split_sentences(document) for document in documents]
    flat = encoder.tokenize([sentence_prefix + s for document in sentences for s in document])
    result, start = [], 0
    for document in sentences:
        result.append([ids for ids in flat[start:start + len(document)] if ids])
        start += len(document)
    return [document for document in result if document]


def pretraining_dataset(family, documents, encoder, batch_size=16, seed=0, dynamic=None,
                        shuffle=True):
    """The family's pretraining examples as a `MaskedLMDataset` ready for `fit`.

    dynamic=None takes the family's own choice (see the table above).
    """
    family = MODEL_FAMILIES[family]
    length = encoder.sequence_length
    ids = tokenized_documents(documents, encoder)
    masking = dict(special_token_ids=encoder.special_token_ids(),
                   vocabulary_size=encoder.vocabulary_size,
                   mask_token_id=encoder.mask_token_id, **family.masking)
    dynamic = family.dynamic_masking if dynamic is None else dynamic
    if family.sentence_objective != "none":
        pairs = sentence_pair_examples(ids, length, encoder.cls_token_id, encoder.sep_token_id,
                                       encoder.pad_token_id, np.random.default_rng(seed),
                                       objective=family.sentence_objective)
        labels = {f"{family.sentence_objective}_logits": pairs.pop("labels")}
        return MaskedLMDataset(pairs, masking, batch_size, labels=labels,
                               dynamic=dynamic, shuffle=shuffle, seed=seed)
    packed = pack_sentences(ids, length, encoder.cls_token_id, encoder.sep_token_id,
                            encoder.pad_token_id, document_separator_id=encoder.sep_token_id)
    if family.segment_ids:  # one segment: packed rows are not sentence pairs
        packed["segment_ids"] = np.zeros_like(packed["token_ids"])
    return MaskedLMDataset(packed, masking, batch_size, shuffle=shuffle, seed=seed, dynamic=dynamic)


def small_pretrainer(family, vocabulary_size, sequence_length):
    """A freshly initialised small pretrainer of the family."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"Unknown family {family!r}; choose one of {FAMILIES}.")
    family = MODEL_FAMILIES[family]
    backbone = family.backbone(**family.quick_size, vocabulary_size=vocabulary_size,
                               max_sequence_length=sequence_length)
    return family.pretrainer(backbone, **family.quick_pretrainer_args)


def pretrain(family, documents, steps=200, vocabulary_size=2000, sequence_length=64,
             batch_size=16, learning_rate=2e-3, seed=0, cache_dir=None, verbose=0,
             callbacks=()):
    """Pretrain a small `family` model on `documents` for `steps` updates.

    A tenth of the documents is held out; the pretraining loss on them (with a
    fixed masking) is measured before and after training.

    Returns a dict: model, encoder, parameters, initial_loss, final_loss (both
    held out), train_losses (mean training loss of each pass over the data),
    steps and seconds (training only).
    """
    keras.utils.set_random_seed(seed)
    train_documents, heldout_documents = train_validation_split(documents, 0.1, seed)
    encoder = train_encoder(family, train_documents, vocabulary_size, sequence_length, cache_dir)
    data = pretraining_dataset(family, train_documents, encoder, batch_size, seed)
    heldout = pretraining_dataset(family, heldout_documents, encoder, batch_size, seed,
                                  dynamic=False, shuffle=False)
    model = small_pretrainer(family, encoder.vocabulary_size, sequence_length)
    MODEL_FAMILIES[family].compile_pretrainer(model, learning_rate=learning_rate,
                                              warmup_steps=steps // 10, total_steps=steps)
    initial_loss = model.evaluate(heldout, verbose=0, return_dict=True)["loss"]
    epochs = -(-steps // len(data))
    steps_per_epoch = -(-steps // epochs)
    start = time.perf_counter()
    history = model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose,
                        callbacks=list(callbacks))
    seconds = time.perf_counter() - start
    final_loss = model.evaluate(heldout, verbose=0, return_dict=True)["loss"]
    return {"model": model, "encoder": encoder, "parameters": model.count_params(),
            "initial_loss": float(initial_loss), "final_loss": float(final_loss),
            "train_losses": [float(v) for v in history.history["loss"]],
            "steps": steps_per_epoch * len(history.history["loss"]), "seconds": seconds}


def decoder_rows(documents, encoder, sequence_length):
    """Sentences packed into rows of `sequence_length + 1` tokens (inputs plus the shifted target),
    with GPT-2's <|endoftext|> opening each row and marking document boundaries."""
    end_of_text = encoder.sep_token_id
    return pack_sentences(tokenized_documents(documents, encoder, " "), sequence_length + 1,
                          end_of_text, end_of_text, end_of_text, document_separator_id=end_of_text)


def pretrain_decoder(documents, steps=200, vocabulary_size=2000, sequence_length=64,
                     batch_size=16, learning_rate=2e-3, seed=0, cache_dir=None, callbacks=()):
    """Pretrain a small GPT-style decoder (causal LM) on `documents` for about `steps` updates.

    A tenth of the documents is held out. Returns a dict: model, encoder,
    parameters, initial_perplexity and final_perplexity (held out),
    unigram_perplexity (add-one unigram model of the training tokens, on the
    same held-out targets: the floor a language model must beat), steps, seconds.
    """
    gpt = MODEL_FAMILIES["gpt"]
    keras.utils.set_random_seed(seed)
    train_documents, heldout_documents = train_validation_split(documents, 0.1, seed)
    encoder = train_encoder("gpt", train_documents, vocabulary_size, sequence_length + 1, cache_dir)
    train = decoder_rows(train_documents, encoder, sequence_length)
    heldout = decoder_rows(heldout_documents, encoder, sequence_length)
    model = gpt.pretrainer(gpt.backbone(**gpt.quick_size, vocabulary_size=encoder.vocabulary_size,
                                        max_sequence_length=sequence_length))
    batches = -(-len(train["token_ids"]) // batch_size)
    epochs = -(-steps // batches)
    gpt.compile_pretrainer(model, learning_rate=learning_rate, warmup_steps=steps // 10,
                           total_steps=epochs * batches, jit_compile=False)
    initial = perplexity(model, heldout["token_ids"], heldout["padding_mask"])
    x, y, weights = next_token_batches(train["token_ids"], train["padding_mask"])
    start = time.perf_counter()
    model.fit(x, y, sample_weight=weights, batch_size=batch_size, epochs=epochs, verbose=0,
              callbacks=list(callbacks))
    seconds = time.perf_counter() - start
    return {"model": model, "encoder": encoder, "parameters": model.count_params(),
            "initial_perplexity": initial,
            "final_perplexity": perplexity(model, heldout["token_ids"], heldout["padding_mask"]),
            "unigram_perplexity": unigram_perplexity(train["token_ids"], train["padding_mask"],
                                                     heldout["token_ids"], heldout["padding_mask"],
                                                     encoder.vocabulary_size),
            "steps": epochs * batches, "seconds": seconds}
