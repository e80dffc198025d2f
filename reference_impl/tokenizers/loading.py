"""Encoders from the vocabulary files of Hugging Face checkpoint folders (or `save`d encoders)."""

import json
from pathlib import Path

from reference_impl.tokenizers.encoders import BytePairEncoder, SentencePieceEncoder, WordPieceEncoder

def load_word_piece_encoder(directory, sequence_length):
    """WordPiece encoder from a BERT folder: `vocab.txt` (+ `tokenizer_config.json`).

    `do_lower_case` and `strip_accents` are read from
    `tokenizer_config.json`; without that file the Hugging Face defaults
    apply (lowercase, accents stripped).
    """
    directory = Path(directory)
    vocab_file = _required_file(directory, "vocab.txt", "a BERT WordPiece vocabulary")
    config = _optional_json(directory / "tokenizer_config.json")
    vocabulary = vocab_file.read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()  # the file's final newline
    return WordPieceEncoder(
        vocabulary,
        sequence_length,
        lowercase=config.get("do_lower_case", True),
        strip_accents=config.get("strip_accents"),
    )


def load_byte_pair_encoder(directory, sequence_length, packing=None):
    """Byte-level BPE encoder from a RoBERTa/GPT-2 folder: `vocab.json` + `merges.txt`.

    `packing` ("roberta" or "gpt2") defaults to the `packing` key of
    `tokenizer_config.json` (written by `BytePairEncoder.save`), else to
    "roberta" when the vocabulary has `<s>` and "gpt2" when it does not.
    """
    directory = Path(directory)
    vocab_file = _required_file(directory, "vocab.json", "a byte-level BPE vocabulary")
    merges_file = _required_file(directory, "merges.txt", "the BPE merge rules")
    vocabulary = json.loads(vocab_file.read_text(encoding="utf-8"))
    merges = [
        line
        for line in merges_file.read_text(encoding="utf-8").split("\n")
        if line and not line.startswith("#version")
    ]
    if packing is None:
        default = "roberta" if "<s>" in vocabulary else "gpt2"
        packing = _optional_json(directory / "tokenizer_config.json").get("packing", default)
    return BytePairEncoder(vocabulary, merges, sequence_length, packing=packing)


def load_sentence_piece_encoder(directory, sequence_length, packing=None):
    """SentencePiece encoder from an ALBERT, XLNet or T5 folder: `spiece.model`.

    `packing` ("bert" or "t5", see `SentencePieceEncoder`) defaults to the
    `packing` key of `tokenizer_config.json` (written by
    `SentencePieceEncoder.save`), else to "bert"; a Hugging Face T5 folder
    has no such key, so its family passes "t5". `do_lower_case` comes from
    `tokenizer_config.json`, else follows the packing (ALBERT uncased, T5 cased).
    """
    directory = Path(directory)
    model_file = _required_file(directory, "spiece.model", "a sentencepiece model")
    config = _optional_json(directory / "tokenizer_config.json")
    return SentencePieceEncoder(
        model_file.read_bytes(),
        sequence_length,
        lowercase=config.get("do_lower_case"),
        packing=packing or config.get("packing", "bert"),
    )


def _required_file(directory, name, what):
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Tokenizer folder {directory} does not exist. Pass the folder of "
            "a checkpoint (the one holding its tokenizer files)."
        )
    path = directory / name
    if not path.is_file():
        present = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
        raise FileNotFoundError(
            f"{path} is missing: the folder must hold {name} ({what}). "
            f"It holds: {present}."
        )
    return path


def _optional_json(path):
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}). Fix or remove it.") from None
