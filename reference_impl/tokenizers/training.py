"""Training vocabularies on a corpus: WordPiece (keras-hub), byte-level BPE (Hugging Face
`tokenizers`) and sentencepiece; and the encoders built from them in one call."""

import io
import json

from reference_impl.tokenizers.encoders import (
    ALBERT_CONTROL_TOKENS,
    BERT_SPECIAL_TOKENS,
    GPT2_SPECIAL_TOKENS,
    ROBERTA_SPECIAL_TOKENS,
    SENTENCE_PIECE_PACKINGS,
    BytePairEncoder,
    SentencePieceEncoder,
    WordPieceEncoder,
    bert_normalize,
)

def train_word_piece_vocabulary(documents, vocabulary_size, lowercase=True):
    """Trains a BERT WordPiece vocabulary with keras-hub.

    Lines of the documents are normalized as `WordPieceEncoder` will
    normalize them (`lowercase=False` gives a cased vocabulary). The result
    starts with `[PAD]`, `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]` (so `[PAD]` is
    id 0) and has at most `vocabulary_size` tokens; keras-hub's trainer
    stops at the largest vocabulary it can build within the limit.
    """
    import tensorflow as tf
    from keras_hub.tokenizers import compute_word_piece_vocabulary

    lines = [bert_normalize(line, lowercase, lowercase) for line in _corpus_lines(documents)]
    return compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(lines).batch(1000),
        vocabulary_size=vocabulary_size,
        lowercase=False,
        strip_accents=False,
        reserved_tokens=list(BERT_SPECIAL_TOKENS),
    )


def train_byte_pair_vocabulary(documents, vocabulary_size, special_tokens=ROBERTA_SPECIAL_TOKENS):
    """Trains a byte-level BPE vocabulary; returns `(vocabulary, merges)`.

    keras-hub has no BPE trainer, so the Hugging Face `tokenizers` BPE
    trainer learns the merges, with the same byte-level pre-tokenizer
    (GPT-2's split pattern, no prefix space) that keras-hub's
    `BytePairTokenizer` applies. All 256 byte symbols are kept, so any text
    can be encoded. `special_tokens` take the first ids, in order: pass
    `ROBERTA_SPECIAL_TOKENS` or `GPT2_SPECIAL_TOKENS`.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    minimum = len(special_tokens) + len(alphabet)
    if vocabulary_size < minimum:
        raise ValueError(
            f"vocabulary_size {vocabulary_size} is too small for byte-level "
            f"BPE: the {len(alphabet)} byte symbols and {len(special_tokens)} "
            f"special tokens alone need {minimum}."
        )
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size,
        special_tokens=list(special_tokens),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus_lines(documents), trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def train_sentence_piece_model(documents, vocabulary_size, lowercase=True, packing="bert"):
    """Trains a unigram sentencepiece model; returns its bytes.

    Ids, packing "bert" (ALBERT's layout): `<pad>` 0, `<unk>` 1, `[CLS]` 2,
    `[SEP]` 3, `[MASK]` 4; packing "t5" (T5's): `<pad>` 0, `</s>` 1, `<unk>` 2.
    The special pieces are control pieces: never produced from text. Lines
    are lowercased first when `lowercase` (pass the same flag to
    `SentencePieceEncoder`).
    """
    import sentencepiece

    if packing not in SENTENCE_PIECE_PACKINGS:
        raise ValueError(f"packing must be one of {SENTENCE_PIECE_PACKINGS}, got {packing!r}.")
    special_ids = (dict(unk_id=1, eos_id=-1, control_symbols=list(ALBERT_CONTROL_TOKENS)) if packing == "bert"
                   else dict(eos_id=1, unk_id=2))
    lines = [line.lower() if lowercase else line for line in _corpus_lines(documents)]
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=vocabulary_size,
            model_type="unigram",
            pad_id=0,
            bos_id=-1,
            **special_ids,
            character_coverage=1.0,
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as error:
        raise ValueError(
            f"sentencepiece could not train a {vocabulary_size}-piece model "
            f"on this corpus ({error}). Use a smaller vocabulary_size or a "
            "larger corpus."
        ) from None
    return model.getvalue()


def _corpus_lines(documents):
    if isinstance(documents, str):
        raise TypeError("documents must be a list of strings, not one string.")
    lines = [line for document in documents for line in document.split("\n") if line.strip()]
    if not lines:
        raise ValueError("The corpus has no text to train a vocabulary on.")
    return lines


# Trained encoders, one call each (what the model-family registry calls) ----


def train_word_piece_encoder(documents, vocabulary_size, sequence_length):
    """A `WordPieceEncoder` (BERT, ELECTRA) with a vocabulary trained on `documents`."""
    return WordPieceEncoder(train_word_piece_vocabulary(documents, vocabulary_size), sequence_length)


def train_byte_pair_encoder(documents, vocabulary_size, sequence_length, packing="roberta"):
    """A `BytePairEncoder` trained on `documents`: RoBERTa's specials, or GPT-2's one
    special token with packing="gpt2"."""
    special_tokens = GPT2_SPECIAL_TOKENS if packing == "gpt2" else ROBERTA_SPECIAL_TOKENS
    vocabulary, merges = train_byte_pair_vocabulary(documents, vocabulary_size, special_tokens)
    return BytePairEncoder(vocabulary, merges, sequence_length, packing=packing)


def train_sentence_piece_encoder(documents, vocabulary_size, sequence_length, packing="bert"):
    """A `SentencePieceEncoder` with a model trained on `documents`: ALBERT's layout, lowercased,
    or T5's, cased, with packing="t5"."""
    lowercase = packing == "bert"
    proto = train_sentence_piece_model(documents, vocabulary_size, lowercase, packing)
    return SentencePieceEncoder(proto, sequence_length, lowercase=lowercase, packing=packing)
