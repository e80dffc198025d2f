"""The encoders: a keras-hub tokenizer plus a packing rule, text in, fixed-length arrays out.

    WordPieceEncoder      BERT / ELECTRA   [CLS] a [SEP] b [SEP]
    SentencePieceEncoder  ALBERT           [CLS] a [SEP] b [SEP]
                          T5               a </s> b </s>   (T5's own vocabularies)
    BytePairEncoder       RoBERTa          <s> a </s></s> b </s>
                          GPT-2            a <|endoftext|> b   (no other specials)

Pairs that do not fit are truncated longest-first: tokens come off the end
of the longer text until the pair fits, the first text keeping the extra
token when the budget is odd. keras-hub's `"round_robin"` truncation (one
token to each text in turn) leaves exactly those lengths.

keras-hub and TensorFlow are imported inside the functions that need them.
"""

import json
import unicodedata
from pathlib import Path

import numpy as np

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROBERTA_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
GPT2_SPECIAL_TOKENS = ("<|endoftext|>",)
# ALBERT's sentencepiece models put <pad> at 0 and <unk> at 1, then the
# BERT-style control pieces.
ALBERT_CONTROL_TOKENS = ("[CLS]", "[SEP]", "[MASK]")
SENTENCE_PIECE_PACKINGS = ("bert", "t5")
ARRAY_NAMES = ("token_ids", "segment_ids", "padding_mask")

# Texts handed to TensorFlow at once; bounds memory on large corpora.
_TOKENIZE_CHUNK = 4096


class TextEncoder:
    """A keras-hub tokenizer plus a rule that packs one or two texts per row.

    Subclasses build `self.tokenizer` and call `_set_packing`. Public
    attributes: `sequence_length`, `packing`, `vocabulary_size`, and the
    special ids `pad_token_id`, `cls_token_id`, `sep_token_id`,
    `mask_token_id`, `unk_token_id` (None where the style has no such token).
    """

    def __init__(self, sequence_length):
        if int(sequence_length) < 2:
            raise ValueError(
                f"sequence_length must be at least 2, got {sequence_length}."
            )
        self.sequence_length = int(sequence_length)

    def _set_packing(self, packing, pad, cls=None, sep=None, mask=None, unk=None):
        """Looks up the special tokens' ids and builds the packer."""
        from keras_hub.layers import MultiSegmentPacker

        self.packing = packing
        self.vocabulary_size = int(self.tokenizer.vocabulary_size())
        self.pad_token_id = self._special_id(pad)
        self.cls_token_id = self._special_id(cls)
        self.sep_token_id = self._special_id(sep)
        self.mask_token_id = self._special_id(mask)
        self.unk_token_id = self._special_id(unk)
        if packing == "bert":
            start, separator, end = [self.cls_token_id], [self.sep_token_id], [self.sep_token_id]
        elif packing == "roberta":
            start, separator, end = [self.cls_token_id], [self.sep_token_id] * 2, [self.sep_token_id]
        elif packing == "t5":  # every text ends with </s>; nothing starts one
            start, separator, end = [], [self.sep_token_id], [self.sep_token_id]
        else:  # gpt2: the end-of-text token only separates the two texts
            start, separator, end = [], [self.sep_token_id], []
        # Padding is written as -1 first so that the mask can be read off
        # the ids even where the pad id also occurs as a real token (GPT-2
        # pads with <|endoftext|>).
        self._packer = MultiSegmentPacker(
            sequence_length=self.sequence_length,
            start_value=start,
            end_value=end,
            sep_value=separator,
            pad_value=-1,
            truncate="round_robin",
        )
        self._build_graphs()

    def _build_graphs(self):
        """Wraps tokenizer and packer in `tf.function`s.

        Inside a TensorFlow graph keras-hub takes its TensorFlow path
        (tensorflow-text's FastWordpieceTokenizer and SentencepieceOp,
        keras-hub's byte-level BPE in TensorFlow ops); called eagerly it
        would take a pure-Python fallback instead. Fixed signatures keep
        each graph traced once per encoder.
        """
        import tensorflow as tf

        texts = tf.TensorSpec([None], tf.string)
        ids = tf.RaggedTensorSpec([None, None], tf.int32, ragged_rank=1)

        # Plain TensorFlow ops already: AutoGraph has nothing to convert here.
        @tf.autograph.experimental.do_not_convert
        def tokenize(strings):
            return tf.cast(self.tokenizer.tokenize(strings), tf.int32)

        self._tokenize_graph = tf.function(tokenize, input_signature=[texts])
        self._detokenize_graph = tf.function(self.tokenizer.detokenize, input_signature=[ids])
        self._pack_single_graph = tf.function(
            lambda first: self._packer(first), input_signature=[ids]
        )
        self._pack_pair_graph = tf.function(
            lambda first, second: self._packer((first, second)), input_signature=[ids, ids]
        )

    def _special_id(self, token):
        if token is None:
            return None
        try:
            token_id = self.tokenizer.token_to_id(token)
        except (KeyError, ValueError):  # WordPiece raises, sentencepiece gives <unk>
            token_id = None
        if token_id is None or self.tokenizer.id_to_token(token_id) != token:
            raise ValueError(
                f"Special token {token!r} is not in the vocabulary. Train or "
                f"load a vocabulary that contains it (expected for "
                f"{type(self).__name__} with packing {self.packing!r})."
            )
        return int(token_id)

    def special_token_ids(self):
        """Ids of every special token this encoder uses, as a set."""
        ids = (
            self.pad_token_id,
            self.cls_token_id,
            self.sep_token_id,
            self.mask_token_id,
            self.unk_token_id,
        )
        return {token_id for token_id in ids if token_id is not None}

    def normalize(self, text):
        """Text as the vocabulary expects it (subclasses lowercase etc.)."""
        return text

    def tokenize(self, texts):
        """Token ids of each text, no specials, no truncation: list of lists."""
        token_ids = []
        for chunk in self._normalized_chunks(_as_text_list(texts, "texts")):
            token_ids.extend(self._tokenize_graph(chunk).to_list())
        return token_ids

    def detokenize(self, token_ids):
        """Text of one sequence of ids; packing specials and padding left out.

        Unknown-token ids stay (they show as the unknown token).
        """
        import tensorflow as tf

        dropped = self.special_token_ids() - {self.unk_token_id}
        kept = [int(i) for i in token_ids if int(i) not in dropped]
        text = self._detokenize_graph(tf.ragged.constant([kept], tf.int32, ragged_rank=1))
        # Byte-level ids cut mid-character decode to U+FFFD, not an error.
        return text.numpy()[0].decode("utf-8", errors="replace")

    def encode(self, first, second=None):
        """Packs texts (or text pairs) into fixed-length arrays.

        Args:
            first: a string or a list of strings.
            second: None for single texts, or a list of the same length
                (or one string when `first` is one string) for pairs.

        Returns:
            dict with `token_ids` (int32), `segment_ids` (int32) and
            `padding_mask` (bool), each `(len(first), sequence_length)`.
        """
        first = _as_text_list(first, "first")
        if second is None:
            chunks = [(chunk,) for chunk in self._normalized_chunks(first)]
            pack = self._pack_single_graph
        else:
            second = _as_text_list(second, "second")
            if len(second) != len(first):
                raise ValueError(
                    f"Got {len(first)} first texts but {len(second)} second "
                    "texts; pairs need one second text per first text."
                )
            chunks = zip(self._normalized_chunks(first), self._normalized_chunks(second))
            pack = self._pack_pair_graph
        token_ids = [np.zeros((0, self.sequence_length), np.int32)]
        segment_ids = [np.zeros((0, self.sequence_length), np.int32)]
        for chunk in chunks:
            packed_ids, packed_segments = pack(*(self._tokenize_graph(texts) for texts in chunk))
            token_ids.append(packed_ids.numpy())
            segment_ids.append(packed_segments.numpy())
        token_ids = np.concatenate(token_ids).astype(np.int32)
        padding_mask = token_ids != -1
        token_ids[~padding_mask] = self.pad_token_id
        return {
            "token_ids": token_ids,
            "segment_ids": np.concatenate(segment_ids).astype(np.int32),
            "padding_mask": padding_mask,
        }

    def _normalized_chunks(self, texts):
        """Normalized texts as string tensors of at most `_TOKENIZE_CHUNK`."""
        import tensorflow as tf

        for start in range(0, len(texts), _TOKENIZE_CHUNK):
            chunk = [self.normalize(text) for text in texts[start : start + _TOKENIZE_CHUNK]]
            yield tf.constant(chunk, dtype=tf.string)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class WordPieceEncoder(TextEncoder):
    """BERT-style WordPiece encoder: `[CLS] a [SEP] b [SEP]`, `[PAD]` padding.

    Args:
        vocabulary: list of tokens (line order of a BERT `vocab.txt`).
        sequence_length: length of every packed row.
        lowercase: lowercase the text (BERT "uncased" vocabularies).
        strip_accents: remove accents (NFD, then drop combining marks).
            None follows `lowercase`, as BERT does.

    keras-hub's own lowercasing is Unicode case folding with NFKC
    normalization, which rewrites characters BERT keeps ("µ" becomes "μ",
    "ﬁ" becomes "fi") and so picks different ids than the vocabulary's
    tokenizer. The text is therefore normalized here the way BERT's
    normalizer does (accents stripped, then lowercased) and keras-hub only
    splits it and applies WordPiece.
    """

    def __init__(self, vocabulary, sequence_length, lowercase=True, strip_accents=None):
        from keras_hub.tokenizers import WordPieceTokenizer

        super().__init__(sequence_length)
        self.vocabulary = list(vocabulary)
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.tokenizer = WordPieceTokenizer(
            vocabulary=self.vocabulary,
            lowercase=False,
            strip_accents=False,
            oov_token="[UNK]",
        )
        self._set_packing("bert", pad="[PAD]", cls="[CLS]", sep="[SEP]", mask="[MASK]", unk="[UNK]")

    def normalize(self, text):
        return bert_normalize(text, self.lowercase, self.strip_accents)

    def get_config(self):
        return {
            "vocabulary": self.vocabulary,
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
        }

    def save(self, directory):
        """Writes `vocab.txt` and `tokenizer_config.json` (Hugging Face layout)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vocab.txt").write_text("\n".join(self.vocabulary) + "\n", encoding="utf-8")
        _write_json(directory / "tokenizer_config.json", {
            "do_lower_case": self.lowercase,
            "strip_accents": self.strip_accents,
        })


class BytePairEncoder(TextEncoder):
    """Byte-level BPE encoder, packed RoBERTa-style or GPT-2-style.

    Args:
        vocabulary: dict token -> id (a `vocab.json`).
        merges: list of merge rules, each "left right" (a `merges.txt`).
        sequence_length: length of every packed row.
        packing: "roberta" (`<s> a </s></s> b </s>`, `<pad>` padding) or
            "gpt2" (`a <|endoftext|> b`, padded with `<|endoftext|>`; GPT-2
            has no pad, class or mask token, so those ids are None and only
            `padding_mask` tells padding apart).
    """

    def __init__(self, vocabulary, merges, sequence_length, packing="roberta"):
        from keras_hub.tokenizers import BytePairTokenizer

        if packing not in ("roberta", "gpt2"):
            raise ValueError(
                f"packing must be 'roberta' or 'gpt2' for byte-pair "
                f"vocabularies, got {packing!r}."
            )
        super().__init__(sequence_length)
        self.vocabulary = dict(vocabulary)
        self.merges = list(merges)
        self.tokenizer = BytePairTokenizer(vocabulary=self.vocabulary, merges=self.merges)
        if packing == "roberta":
            self._set_packing("roberta", pad="<pad>", cls="<s>", sep="</s>", mask="<mask>", unk="<unk>")
        else:
            self._set_packing("gpt2", pad="<|endoftext|>", sep="<|endoftext|>")

    def get_config(self):
        return {
            "vocabulary": self.vocabulary,
            "merges": self.merges,
            "sequence_length": self.sequence_length,
            "packing": self.packing,
        }

    def save(self, directory):
        """Writes `vocab.json`, `merges.txt` and `tokenizer_config.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _write_json(directory / "vocab.json", self.vocabulary)
        (directory / "merges.txt").write_text(
            "#version: 0.2\n" + "\n".join(self.merges) + "\n", encoding="utf-8"
        )
        _write_json(directory / "tokenizer_config.json", {"packing": self.packing})


class SentencePieceEncoder(TextEncoder):
    """SentencePiece encoder, packed ALBERT-style or T5-style.

    Args:
        proto: the serialized sentencepiece model (bytes of `spiece.model`).
        sequence_length: length of every packed row.
        lowercase: lowercase the text before sentencepiece sees it (ALBERT
            checkpoints' `do_lower_case`); None: as the packing's
            checkpoints do (ALBERT's are uncased, T5's cased).
        packing: "bert" (ALBERT's and XLNet's kit vocabularies: `[CLS] a
            [SEP] b [SEP]`, `<pad>` padding) or "t5" (T5's vocabularies, a
            Hugging Face T5 `spiece.model` among them: `a </s> b </s>`,
            `<pad>` padding, no class or mask token). T5's `<extra_id_N>`
            sentinels are not pieces of the model: Hugging Face adds them
            after its last piece.
    """

    def __init__(self, proto, sequence_length, lowercase=None, packing="bert"):
        from keras_hub.tokenizers import SentencePieceTokenizer

        if packing not in SENTENCE_PIECE_PACKINGS:
            raise ValueError(
                f"packing must be one of {SENTENCE_PIECE_PACKINGS} for sentencepiece "
                f"models, got {packing!r}."
            )
        super().__init__(sequence_length)
        self.proto = bytes(proto)
        self.lowercase = packing == "bert" if lowercase is None else bool(lowercase)
        self.tokenizer = SentencePieceTokenizer(proto=self.proto)
        if packing == "bert":
            self._set_packing("bert", pad="<pad>", cls="[CLS]", sep="[SEP]", mask="[MASK]", unk="<unk>")
        else:
            self._set_packing("t5", pad="<pad>", sep="</s>", unk="<unk>")

    def normalize(self, text):
        return text.lower() if self.lowercase else text

    def get_config(self):
        return {
            "proto": self.proto,
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
            "packing": self.packing,
        }

    def save(self, directory):
        """Writes `spiece.model` and `tokenizer_config.json`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spiece.model").write_bytes(self.proto)
        _write_json(directory / "tokenizer_config.json",
                    {"do_lower_case": self.lowercase, "packing": self.packing})


def bert_normalize(text, lowercase=True, strip_accents=True):
    """BERT's text normalization: accents stripped (NFD), then lowercased."""
    if strip_accents:
        text = unicodedata.normalize("NFD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text.lower() if lowercase else text


def _write_json(path, value):
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _as_text_list(texts, name):
    if isinstance(texts, str):
        return [texts]
    texts = list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{name}[{index}] is {type(text).__name__}, not str: pass text "
                "strings (decode bytes first)."
            )
    return texts
