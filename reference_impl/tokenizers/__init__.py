"""Tokenizers that turn text into fixed-length integer numpy arrays.

Tokenization is a step of its own: an encoder reads text and writes three
arrays of shape `(batch, sequence_length)`,

    token_ids     int32  vocabulary ids, specials included, padded
    segment_ids   int32  0 for the first text, 1 for the second
    padding_mask  bool   True on real tokens, False on padding

so that models read plain arrays and run under any Keras backend without
TensorFlow. The package has four modules, one per job:

    encoders.py  the encoder classes (keras-hub tokenizers + MultiSegmentPacker)
    training.py  vocabularies trained on a corpus (`train_*_vocabulary`,
                 `train_sentence_piece_model`), and encoders trained in one
                 call (`train_*_encoder`)
    loading.py   encoders read from Hugging Face checkpoint folders
                 (`load_*_encoder`), the layout `encoder.save` writes
    cache.py     `encode_to_npz` writes the arrays once; `load_token_arrays`
                 reads them back with numpy alone

Everything is importable from `reference_impl.tokenizers` itself. keras-hub
and TensorFlow are imported inside the functions that need them, so that
importing this package (to read cached arrays) costs numpy only.
"""

from reference_impl.tokenizers.cache import encode_to_npz, load_token_arrays
from reference_impl.tokenizers.encoders import (
    ALBERT_CONTROL_TOKENS,
    ARRAY_NAMES,
    BERT_SPECIAL_TOKENS,
    GPT2_SPECIAL_TOKENS,
    ROBERTA_SPECIAL_TOKENS,
    SENTENCE_PIECE_PACKINGS,
    BytePairEncoder,
    SentencePieceEncoder,
    TextEncoder,
    WordPieceEncoder,
    bert_normalize,
)
from reference_impl.tokenizers.loading import (
    load_byte_pair_encoder,
    load_sentence_piece_encoder,
    load_word_piece_encoder,
)
from reference_impl.tokenizers.training import (
    train_byte_pair_encoder,
    train_byte_pair_vocabulary,
    train_sentence_piece_encoder,
    train_sentence_piece_model,
    train_word_piece_encoder,
    train_word_piece_vocabulary,
)

__all__ = [
    "ALBERT_CONTROL_TOKENS", "ARRAY_NAMES", "BERT_SPECIAL_TOKENS", "GPT2_SPECIAL_TOKENS",
    "ROBERTA_SPECIAL_TOKENS", "SENTENCE_PIECE_PACKINGS", "BytePairEncoder", "SentencePieceEncoder", "TextEncoder",
    "WordPieceEncoder", "bert_normalize", "encode_to_npz", "load_byte_pair_encoder",
    "load_sentence_piece_encoder", "load_token_arrays", "load_word_piece_encoder",
    "train_byte_pair_encoder", "train_byte_pair_vocabulary", "train_sentence_piece_encoder",
    "train_sentence_piece_model", "train_word_piece_encoder", "train_word_piece_vocabulary",
]
