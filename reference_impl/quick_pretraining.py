"""Pretrain a small model of any family on a corpus, end to end, in minutes on a CPU.

corpus -> tokenizer trained on it -> the family's pretraining examples ->
`model.fit`. The demo and the tests use it; students can read it as the recipe
that ties the pieces of `reference_impl` together.

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

from reference_impl import tokenizers
from reference_impl.corpus import split_sentences, train_validation_split
from reference_impl.pretraining import (
    MaskedLMDataset,
    compile_for_pretraining,
    pack_sentences,
    sentence_pair_examples,
)

FAMILIES = ("bert", "roberta", "albert", "electra")

# Small enough to run a few hundred steps on two CPU cores in a minute or two.
SMALL_BACKBONE = dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256)


def train_encoder(family, documents, vocabulary_size, sequence_length, cache_dir=None):
    """The family's tokenizer trained on `documents` (cached on disk when cache_dir is given)."""
    kind = {"bert": "wordpiece", "electra": "wordpiece", "roberta": "bpe", "gpt": "bpe-gpt2",
            "albert": "sentencepiece"}[family]
    key = hashlib.sha256(json.dumps([kind, vocabulary_size, documents]).encode()).hexdigest()[:16]
    directory = Path(cache_dir) / f"{kind}-{key}" if cache_dir else None
    if directory is not None and directory.exists():
        loader = {"wordpiece": tokenizers.load_word_piece_encoder,
                  "bpe": tokenizers.load_byte_pair_encoder,
                  "bpe-gpt2": tokenizers.load_byte_pair_encoder,
                  "sentencepiece": tokenizers.load_sentence_piece_encoder}[kind]
        return loader(directory, sequence_length)
    if kind == "wordpiece":
        encoder = tokenizers.WordPieceEncoder(
            tokenizers.train_word_piece_vocabulary(documents, vocabulary_size), sequence_length)
    elif kind == "bpe":
        vocabulary, merges = tokenizers.train_byte_pair_vocabulary(documents, vocabulary_size)
        encoder = tokenizers.BytePairEncoder(vocabulary, merges, sequence_length)
    elif kind == "bpe-gpt2":  # the same trainer as RoBERTa's, GPT-2's one special token
        vocabulary, merges = tokenizers.train_byte_pair_vocabulary(
            documents, vocabulary_size, special_tokens=tokenizers.GPT2_SPECIAL_TOKENS)
        encoder = tokenizers.BytePairEncoder(vocabulary, merges, sequence_length, packing="gpt2")
    else:
        encoder = tokenizers.SentencePieceEncoder(
            tokenizers.train_sentence_piece_model(documents, vocabulary_size), sequence_length)
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
    length = encoder.sequence_length
    ids = tokenized_documents(documents, encoder)
    masking = dict(special_token_ids=encoder.special_token_ids(),
                   vocabulary_size=encoder.vocabulary_size,
                   mask_token_id=encoder.mask_token_id)
    if family == "electra":  # the paper: no random replacements, the generator makes them
        masking.update(mask_token_rate=0.85, random_token_rate=0.0)
    if family in ("bert", "albert"):
        objective = "nsp" if family == "bert" else "sop"
        pairs = sentence_pair_examples(ids, length, encoder.cls_token_id, encoder.sep_token_id,
                                       encoder.pad_token_id, np.random.default_rng(seed),
                                       objective=objective)
        labels = {f"{objective}_logits": pairs.pop("labels")}
        return MaskedLMDataset(pairs, masking, batch_size, labels=labels,
                               dynamic=bool(dynamic), shuffle=shuffle, seed=seed)
    packed = pack_sentences(ids, length, encoder.cls_token_id, encoder.sep_token_id,
                            encoder.pad_token_id, document_separator_id=encoder.sep_token_id)
    if family == "electra":
        packed["segment_ids"] = np.zeros_like(packed["token_ids"])
    return MaskedLMDataset(packed, masking, batch_size, shuffle=shuffle, seed=seed,
                           dynamic=True if dynamic is None else dynamic)


def small_pretrainer(family, vocabulary_size, sequence_length):
    """A freshly initialised small pretrainer of the family."""
    config = dict(SMALL_BACKBONE, vocabulary_size=vocabulary_size,
                  max_sequence_length=sequence_length)
    if family == "bert":
        from reference_impl.bert import BertBackbone, BertPretrainer
        return BertPretrainer(BertBackbone(**config))
    if family == "roberta":
        from reference_impl.roberta import RobertaBackbone, RobertaPretrainer
        return RobertaPretrainer(RobertaBackbone(**config))
    if family == "albert":
        from reference_impl.albert import AlbertBackbone, AlbertPretrainer
        return AlbertPretrainer(AlbertBackbone(**config, embedding_dim=32, num_groups=1,
                                               num_inner_repetitions=1))
    if family == "electra":
        from reference_impl.electra import ElectraBackbone, ElectraPretrainer
        return ElectraPretrainer(ElectraBackbone(**config, embedding_dim=64), generator_size=0.5)
    raise ValueError(f"Unknown family {family!r}; choose one of {FAMILIES}.")


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
    compile_for_pretraining(model, learning_rate=learning_rate, warmup_steps=steps // 10,
                            total_steps=steps)
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
    from reference_impl.gpt import (GPTBackbone, GPTCausalLM, compile_causal_lm,
                                    next_token_batches, perplexity, unigram_perplexity)

    keras.utils.set_random_seed(seed)
    train_documents, heldout_documents = train_validation_split(documents, 0.1, seed)
    encoder = train_encoder("gpt", train_documents, vocabulary_size, sequence_length + 1, cache_dir)
    train = decoder_rows(train_documents, encoder, sequence_length)
    heldout = decoder_rows(heldout_documents, encoder, sequence_length)
    model = GPTCausalLM(GPTBackbone(**SMALL_BACKBONE, vocabulary_size=encoder.vocabulary_size,
                                    max_sequence_length=sequence_length))
    batches = -(-len(train["token_ids"]) // batch_size)
    epochs = -(-steps // batches)
    compile_causal_lm(model, learning_rate=learning_rate, warmup_steps=steps // 10,
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
