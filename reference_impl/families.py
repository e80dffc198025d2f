"""The model families of the kit, one record each: what a family is made of and how it trains.

Code that works across families (quick pretraining, the demo, the checkpoint
importer, `load_preset`) reads these records instead of branching on a
family's name. A new family is one `ModelFamily` in `FAMILIES` plus its
files (see "Add a model family" in reference_impl/README.md).

This module sits on top: it imports every model file, and no model file
imports it. What a backbone's own `from_preset` and `save_to_preset` need
(its family's name, its Hugging Face converter) is declared on the class
(`family`, `hugging_face_converter`), and the records read it from there.

| family  | tokenizer      | objective                        | sentence objective | task head reads |
|---------|----------------|----------------------------------|--------------------|-----------------|
| bert    | WordPiece      | masked LM, static masking        | next sentence      | first token     |
| roberta | byte-level BPE | masked LM, dynamic masking       | none (packed)      | first token     |
| albert  | SentencePiece  | masked LM, static masking        | sentence order     | first token     |
| electra | WordPiece      | replaced-token detection         | none (packed)      | first token     |
| gpt     | byte-level BPE | causal LM (next token)           | none (packed)      | last token      |
| elmo    | characters     | bidirectional LM (two LSTM LMs)  | none               | frozen features |
| transformer_xl | byte-level BPE | causal LM over segments, memory | none (a stream) | last token      |
| xlnet   | SentencePiece  | permutation LM (two streams)     | none               | last token      |
| t5      | SentencePiece  | span corruption (encoder-decoder)| none               | text to text    |
"""

from dataclasses import dataclass, field
from pathlib import Path
from functools import partial
from typing import Callable

from reference_impl import tokenizers
from reference_impl.albert import AlbertBackbone, AlbertPretrainer
from reference_impl.bert import BertBackbone, BertPretrainer
from reference_impl.electra import ElectraBackbone, ElectraPretrainer
from reference_impl.elmo import ELMoBiLM, ELMoClassifier, ELMoPretrainer, compile_elmo_pretraining
from reference_impl.gpt import GPTBackbone, GPTCausalLM, GPTClassifier, compile_causal_lm
from reference_impl.checkpoints import read_hugging_face_config
from reference_impl.heads import SequenceClassifier
from reference_impl.presets import Presets, preset_class, read_preset_config
from reference_impl.pretraining import compile_for_pretraining
from reference_impl.roberta import RobertaBackbone, RobertaPretrainer
from reference_impl.t5 import T5Backbone, T5Seq2SeqLM
from reference_impl.transformer_xl import TransformerXLBackbone, TransformerXLCausalLM
from reference_impl.xlnet import XLNetBackbone, XLNetPretrainer

#: Small enough to pretrain a few hundred steps on two CPU cores in a minute or two.
SMALL_SIZE = dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256)


@dataclass(frozen=True)
class ModelFamily:
    """One model family: its backbone, tokenizer, pretraining recipe, checkpoints and task head.

    Attributes:
        backbone: the backbone class (`ELMoBiLM` for ELMo); its named sizes
            are `backbone.sizes`, its family's name (the key in `FAMILIES`)
            `backbone.family`, its Hugging Face converter
            `backbone.hugging_face_converter`.
        tokenizer: the tokenizer kind: "wordpiece", "bpe" (byte-level BPE
            with RoBERTa's special tokens), "bpe-gpt2" (GPT-2's one special
            token), "sentencepiece" or "characters" (ELMo reads characters:
            no vocabulary to train).
        train_tokenizer: (documents, vocabulary_size, sequence_length) ->
            a trained encoder; None for "characters".
        load_tokenizer: (folder, sequence_length) -> the encoder saved in a
            checkpoint or preset folder; None for "characters".
        objective: "masked_lm", "replaced_token_detection", "causal_lm",
            "bidirectional_lm", "permutation_lm" or "span_corruption" (encoder-decoder:
            the decoder writes the spans dropped from the input).
        pretrainer: the pretraining model class, called with the backbone
            first (ELMo's also takes the word vocabulary size).
        compile_pretrainer: compiles that pretrainer (optimizer and losses).
        sentence_objective: "nsp" (BERT), "sop" (ALBERT) or "none" (rows
            packed with whole sentences).
        masking: `mask_tokens` rates that differ from BERT's 80/10/10.
        dynamic_masking: mask every batch afresh (RoBERTa) or once (BERT).
        segment_ids: whether the backbone reads `segment_ids`.
        head: how a task head reads the backbone: "first_token" ([CLS] /
            <s>, `SequenceClassifier`), "last_token" (the only position a
            decoder lets see the whole input, `GPTClassifier`) or
            "frozen_features" (a learned mix of a frozen model's layers,
            `ELMoClassifier`) or "text_to_text" (the decoder writes the
            label as a word, `reference_impl.text_to_text`).
        classifier: the task head class for text classification, called
            with (backbone, num_classes); for "text_to_text", the
            sequence-to-sequence model, called with the backbone alone.
        quick_size: backbone arguments of the small model
            `reference_impl.quick_pretraining` trains (without the
            vocabulary size and sequence length).
        quick_pretrainer_args: extra pretrainer arguments for that model.
    """

    backbone: type
    tokenizer: str
    train_tokenizer: Callable | None
    load_tokenizer: Callable | None
    objective: str
    pretrainer: type
    compile_pretrainer: Callable
    head: str
    classifier: type
    sentence_objective: str = "none"
    masking: dict = field(default_factory=dict)
    dynamic_masking: bool = False
    segment_ids: bool = False
    quick_size: dict = field(default_factory=lambda: dict(SMALL_SIZE))
    quick_pretrainer_args: dict = field(default_factory=dict)

    @property
    def name(self):
        """The family's name, e.g. "bert": the key in `FAMILIES`, written in kit presets."""
        return self.backbone.family

    @property
    def sizes(self):
        """The backbone's named sizes, e.g. {"tiny": {...}, "base": {...}}."""
        return self.backbone.sizes

    @property
    def converter(self):
        """The module converting Hugging Face checkpoints (`convert_backbone_config`,
        `convert_weights`), None when none converts."""
        return self.backbone.hugging_face_converter

    @property
    def hugging_face_model_type(self):
        """`model_type` in a Hugging Face config.json, None when no checkpoint converts."""
        return self.converter.MODEL_TYPE if self.converter else None


FAMILIES = {
    family.name: family
    for family in (
        ModelFamily(
            backbone=BertBackbone, tokenizer="wordpiece",
            train_tokenizer=tokenizers.train_word_piece_encoder,
            load_tokenizer=tokenizers.load_word_piece_encoder,
            objective="masked_lm", pretrainer=BertPretrainer,
            compile_pretrainer=compile_for_pretraining,
            sentence_objective="nsp", segment_ids=True,
            head="first_token", classifier=SequenceClassifier,
        ),
        ModelFamily(
            backbone=RobertaBackbone, tokenizer="bpe",
            train_tokenizer=tokenizers.train_byte_pair_encoder,
            load_tokenizer=partial(tokenizers.load_byte_pair_encoder, packing="roberta"),
            objective="masked_lm", pretrainer=RobertaPretrainer,
            compile_pretrainer=compile_for_pretraining, dynamic_masking=True,
            head="first_token", classifier=SequenceClassifier,
        ),
        ModelFamily(
            backbone=AlbertBackbone, tokenizer="sentencepiece",
            train_tokenizer=tokenizers.train_sentence_piece_encoder,
            load_tokenizer=tokenizers.load_sentence_piece_encoder,
            objective="masked_lm", pretrainer=AlbertPretrainer,
            compile_pretrainer=compile_for_pretraining,
            sentence_objective="sop", segment_ids=True,
            head="first_token", classifier=SequenceClassifier,
            quick_size=dict(SMALL_SIZE, embedding_dim=32, num_groups=1, num_inner_repetitions=1),
        ),
        ModelFamily(
            backbone=ElectraBackbone, tokenizer="wordpiece",
            train_tokenizer=tokenizers.train_word_piece_encoder,
            load_tokenizer=tokenizers.load_word_piece_encoder,
            objective="replaced_token_detection", pretrainer=ElectraPretrainer,
            compile_pretrainer=compile_for_pretraining,
            # The paper: no random replacements, the generator makes them.
            masking=dict(mask_token_rate=0.85, random_token_rate=0.0),
            dynamic_masking=True, segment_ids=True,
            head="first_token", classifier=SequenceClassifier,
            quick_size=dict(SMALL_SIZE, embedding_dim=64),
            quick_pretrainer_args=dict(generator_size=0.5),
        ),
        ModelFamily(
            backbone=GPTBackbone, tokenizer="bpe-gpt2",
            train_tokenizer=partial(tokenizers.train_byte_pair_encoder, packing="gpt2"),
            load_tokenizer=partial(tokenizers.load_byte_pair_encoder, packing="gpt2"),
            objective="causal_lm", pretrainer=GPTCausalLM, compile_pretrainer=compile_causal_lm,
            head="last_token", classifier=GPTClassifier,
        ),
        ModelFamily(
            backbone=ELMoBiLM, tokenizer="characters",
            train_tokenizer=None, load_tokenizer=None,
            objective="bidirectional_lm", pretrainer=ELMoPretrainer,
            compile_pretrainer=compile_elmo_pretraining,
            head="frozen_features", classifier=ELMoClassifier,
            quick_size=dict(ELMoBiLM.sizes["tiny"]),
        ),
        ModelFamily(
            backbone=TransformerXLBackbone, tokenizer="bpe-gpt2",
            train_tokenizer=partial(tokenizers.train_byte_pair_encoder, packing="gpt2"),
            load_tokenizer=partial(tokenizers.load_byte_pair_encoder, packing="gpt2"),
            objective="causal_lm", pretrainer=TransformerXLCausalLM,
            compile_pretrainer=compile_causal_lm,
            head="last_token", classifier=GPTClassifier,
            quick_pretrainer_args=dict(segment_length=32),
        ),
        ModelFamily(
            # Packed as ALBERT packs ([CLS] A [SEP] B [SEP]); XLNet's own vocabulary ends a
            # text with <sep> <cls>, which the last-token head reads.
            backbone=XLNetBackbone, tokenizer="sentencepiece",
            train_tokenizer=tokenizers.train_sentence_piece_encoder,
            load_tokenizer=tokenizers.load_sentence_piece_encoder,
            objective="permutation_lm", pretrainer=XLNetPretrainer,
            compile_pretrainer=compile_causal_lm, segment_ids=True,
            head="last_token", classifier=GPTClassifier,
        ),
        ModelFamily(
            # T5's SentencePiece layout (<pad> 0, </s> 1, <unk> 2, cased), as in a Hugging Face
            # T5 folder's spiece.model: each text ends with </s>, <pad> starts the decoder.
            backbone=T5Backbone, tokenizer="sentencepiece",
            train_tokenizer=partial(tokenizers.train_sentence_piece_encoder, packing="t5"),
            load_tokenizer=partial(tokenizers.load_sentence_piece_encoder, packing="t5"),
            objective="span_corruption", pretrainer=T5Seq2SeqLM,
            compile_pretrainer=compile_causal_lm,
            head="text_to_text", classifier=T5Seq2SeqLM,
            quick_size=dict(SMALL_SIZE),
        ),
    )
}


def preset_family(preset):
    """The model family a preset folder (kit or Hugging Face) holds, and its config.json."""
    config = read_preset_config(preset)
    return FAMILIES[preset_class(preset, config).family], config


def load_preset(preset, load_weights=True, **overrides):
    """The model saved in `preset`, a kit preset or Hugging Face checkpoint folder, of any family.

    `Backbone.from_preset` does the same for the families whose modules are
    imported; this module imports them all.
    """
    return Presets.from_preset(preset, load_weights=load_weights, **overrides)


def load_hugging_face(directory, **overrides):
    """A Hugging Face checkpoint folder -> the family's backbone, chosen by `model_type`.

    `overrides` replace converted arguments (e.g. dropout=0.0, dtype=...).
    """
    if "model_type" not in read_hugging_face_config(directory):
        raise ValueError(f"{Path(directory) / 'config.json'} has no model_type: it is not a Hugging "
                         f"Face checkpoint folder (a kit preset loads with load_preset).")
    return load_preset(directory, **overrides)


def load_tokenizer(preset, sequence_length):
    """The encoder saved in a preset folder (kit or Hugging Face), for its family."""
    family, _ = preset_family(preset)
    if family.load_tokenizer is None:
        raise ValueError(f"The {family.name} family has no tokenizer files to load "
                         f"(its tokenizer is {family.tokenizer!r}).")
    return family.load_tokenizer(preset, sequence_length)
