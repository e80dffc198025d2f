"""The model families of the kit, one record each: what a family is made of and how it trains.

Code that works across families (quick pretraining, the demo, the checkpoint
importer, `Backbone.from_preset`) reads these records instead of branching
on a family's name. A new family is one `ModelFamily` in `FAMILIES` plus its
files (see "Add a model family" in reference_impl/README.md).

| family  | tokenizer      | objective                        | sentence objective | task head reads |
|---------|----------------|----------------------------------|--------------------|-----------------|
| bert    | WordPiece      | masked LM, static masking        | next sentence      | first token     |
| roberta | byte-level BPE | masked LM, dynamic masking       | none (packed)      | first token     |
| albert  | SentencePiece  | masked LM, static masking        | sentence order     | first token     |
| electra | WordPiece      | replaced-token detection         | none (packed)      | first token     |
| gpt     | byte-level BPE | causal LM (next token)           | none (packed)      | last token      |
| elmo    | characters     | bidirectional LM (two LSTM LMs)  | none               | frozen features |
| t5      | SentencePiece  | span corruption (encoder-decoder)| none               | text to text    |
"""

from dataclasses import dataclass, field
from functools import partial
from typing import Callable

from reference_impl import tokenizers
from reference_impl.albert import AlbertBackbone, AlbertPretrainer
from reference_impl.bert import BertBackbone, BertPretrainer
from reference_impl.electra import ElectraBackbone, ElectraPretrainer
from reference_impl.elmo import ELMoBiLM, ELMoClassifier, ELMoPretrainer, compile_elmo_pretraining
from reference_impl.gpt import GPTBackbone, GPTCausalLM, GPTClassifier, compile_causal_lm
from reference_impl.heads import SequenceClassifier
from reference_impl.pretraining import compile_for_pretraining
from reference_impl.roberta import RobertaBackbone, RobertaPretrainer
from reference_impl.t5 import T5Backbone, T5Seq2SeqLM

#: Small enough to pretrain a few hundred steps on two CPU cores in a minute or two.
SMALL_SIZE = dict(num_layers=2, num_heads=2, hidden_dim=64, intermediate_dim=256)


@dataclass(frozen=True)
class ModelFamily:
    """One model family: its backbone, tokenizer, pretraining recipe, checkpoints and task head.

    Attributes:
        name: the family's key in `FAMILIES`.
        backbone: the backbone class (`ELMoBiLM` for ELMo); its named sizes
            are `backbone.sizes`.
        tokenizer: the tokenizer kind: "wordpiece", "bpe" (byte-level BPE
            with RoBERTa's special tokens), "bpe-gpt2" (GPT-2's one special
            token), "sentencepiece" or "characters" (ELMo reads characters:
            no vocabulary to train).
        train_tokenizer: (documents, vocabulary_size, sequence_length) ->
            a trained encoder; None for "characters".
        load_tokenizer: (folder, sequence_length) -> the encoder saved in a
            checkpoint or preset folder; None for "characters".
        objective: "masked_lm", "replaced_token_detection", "causal_lm",
            "bidirectional_lm" or "span_corruption" (encoder-decoder: the
            decoder writes the spans dropped from the input).
        pretrainer: the pretraining model class, called with the backbone
            first (ELMo's also takes the word vocabulary size).
        compile_pretrainer: compiles that pretrainer (optimizer and losses).
        sentence_objective: "nsp" (BERT), "sop" (ALBERT) or "none" (rows
            packed with whole sentences).
        masking: `mask_tokens` rates that differ from BERT's 80/10/10.
        dynamic_masking: mask every batch afresh (RoBERTa) or once (BERT).
        segment_ids: whether the backbone reads `segment_ids`.
        hugging_face_model_type: `model_type` in a Hugging Face config.json,
            None when no checkpoint converts.
        converter: the module converting those checkpoints
            (`convert_backbone_config`, `convert_weights`).
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

    name: str
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
    hugging_face_model_type: str | None = None
    converter: str | None = None
    quick_size: dict = field(default_factory=lambda: dict(SMALL_SIZE))
    quick_pretrainer_args: dict = field(default_factory=dict)

    @property
    def sizes(self):
        """The backbone's named sizes, e.g. {"tiny": {...}, "base": {...}}."""
        return self.backbone.sizes


FAMILIES = {
    family.name: family
    for family in (
        ModelFamily(
            name="bert", backbone=BertBackbone, tokenizer="wordpiece",
            train_tokenizer=tokenizers.train_word_piece_encoder,
            load_tokenizer=tokenizers.load_word_piece_encoder,
            objective="masked_lm", pretrainer=BertPretrainer,
            compile_pretrainer=compile_for_pretraining,
            sentence_objective="nsp", segment_ids=True,
            hugging_face_model_type="bert", converter="reference_impl.checkpoints.convert_bert",
            head="first_token", classifier=SequenceClassifier,
        ),
        ModelFamily(
            name="roberta", backbone=RobertaBackbone, tokenizer="bpe",
            train_tokenizer=tokenizers.train_byte_pair_encoder,
            load_tokenizer=partial(tokenizers.load_byte_pair_encoder, packing="roberta"),
            objective="masked_lm", pretrainer=RobertaPretrainer,
            compile_pretrainer=compile_for_pretraining, dynamic_masking=True,
            hugging_face_model_type="roberta",
            converter="reference_impl.checkpoints.convert_roberta",
            head="first_token", classifier=SequenceClassifier,
        ),
        ModelFamily(
            name="albert", backbone=AlbertBackbone, tokenizer="sentencepiece",
            train_tokenizer=tokenizers.train_sentence_piece_encoder,
            load_tokenizer=tokenizers.load_sentence_piece_encoder,
            objective="masked_lm", pretrainer=AlbertPretrainer,
            compile_pretrainer=compile_for_pretraining,
            sentence_objective="sop", segment_ids=True,
            hugging_face_model_type="albert",
            converter="reference_impl.checkpoints.convert_albert",
            head="first_token", classifier=SequenceClassifier,
            quick_size=dict(SMALL_SIZE, embedding_dim=32, num_groups=1, num_inner_repetitions=1),
        ),
        ModelFamily(
            name="electra", backbone=ElectraBackbone, tokenizer="wordpiece",
            train_tokenizer=tokenizers.train_word_piece_encoder,
            load_tokenizer=tokenizers.load_word_piece_encoder,
            objective="replaced_token_detection", pretrainer=ElectraPretrainer,
            compile_pretrainer=compile_for_pretraining,
            # The paper: no random replacements, the generator makes them.
            masking=dict(mask_token_rate=0.85, random_token_rate=0.0),
            dynamic_masking=True, segment_ids=True,
            hugging_face_model_type="electra",
            converter="reference_impl.checkpoints.convert_electra",
            head="first_token", classifier=SequenceClassifier,
            quick_size=dict(SMALL_SIZE, embedding_dim=64),
            quick_pretrainer_args=dict(generator_size=0.5),
        ),
        ModelFamily(
            name="gpt", backbone=GPTBackbone, tokenizer="bpe-gpt2",
            train_tokenizer=partial(tokenizers.train_byte_pair_encoder, packing="gpt2"),
            load_tokenizer=partial(tokenizers.load_byte_pair_encoder, packing="gpt2"),
            objective="causal_lm", pretrainer=GPTCausalLM, compile_pretrainer=compile_causal_lm,
            hugging_face_model_type="gpt2", converter="reference_impl.checkpoints.convert_gpt2",
            head="last_token", classifier=GPTClassifier,
        ),
        ModelFamily(
            name="elmo", backbone=ELMoBiLM, tokenizer="characters",
            train_tokenizer=None, load_tokenizer=None,
            objective="bidirectional_lm", pretrainer=ELMoPretrainer,
            compile_pretrainer=compile_elmo_pretraining,
            head="frozen_features", classifier=ELMoClassifier,
            quick_size=dict(ELMoBiLM.sizes["tiny"]),
        ),
        ModelFamily(
            name="t5", backbone=T5Backbone, tokenizer="sentencepiece",
            # The kit's SentencePiece encoder: its own vocabularies and kit presets. A
            # Hugging Face T5 spiece.model (</s>, <extra_id_N>) is not loaded yet.
            train_tokenizer=tokenizers.train_sentence_piece_encoder,
            load_tokenizer=tokenizers.load_sentence_piece_encoder,
            objective="span_corruption", pretrainer=T5Seq2SeqLM,
            compile_pretrainer=compile_causal_lm,
            hugging_face_model_type="t5", converter="reference_impl.checkpoints.convert_t5",
            head="text_to_text", classifier=T5Seq2SeqLM,
            quick_size=dict(SMALL_SIZE),
        ),
    )
}


def family_of(model_class):
    """The family whose backbone is `model_class` (or a parent of it)."""
    for family in FAMILIES.values():
        if issubclass(model_class, family.backbone):
            return family
    raise ValueError(f"{model_class.__name__} is in no model family; add its record to "
                     "reference_impl.families.FAMILIES.")


def hugging_face_family(model_type):
    """The family that converts Hugging Face checkpoints whose config.json says `model_type`."""
    families = {f.hugging_face_model_type: f for f in FAMILIES.values() if f.converter}
    if model_type not in families:
        raise ValueError(f"model_type {model_type!r} is not supported; supported: {sorted(families)}.")
    return families[model_type]
