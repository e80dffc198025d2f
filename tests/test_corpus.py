"""Corpora: the offline Language Reference prose, staff text files, sentence splits."""

import pytest

from reference_impl.corpus import (
    load_text_corpus,
    offline_corpus,
    split_sentences,
    train_validation_split,
)


@pytest.fixture(scope="module")
def documents():
    return offline_corpus()


def test_offline_corpus_is_real_prose_without_code_or_markup(documents):
    assert len(documents) >= 70  # one per help topic (79 in CPython 3.11)
    assert sum(len(d) for d in documents) > 100_000
    lines = [line for document in documents for line in document.split("\n")]
    assert all(line and line == line.strip() for line in lines)
    assert not any("::=" in line for line in lines)
    assert not any(set(line) <= set("*=-+| ") for line in lines)
    assert not any(line.startswith(("+-", "|", "* ")) for line in lines)
    # A known paragraph of help("assert"), its two source lines joined ...
    assert "Assert statements are a convenient way to insert debugging assertions into a program:" in lines
    # ... while the indented code example and the grammar rule below it are gone.
    assert not any("if not expression: raise AssertionError" in line for line in lines)
    assert not any(line.startswith("assert_stmt") for line in lines)
    assert not any('The "assert" statement' == line for line in lines)


def test_offline_corpus_is_stable(documents):
    assert offline_corpus() == documents


def test_one_document_per_line_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("First document.\nSecond document here.\n\n", encoding="utf-8")
    assert load_text_corpus(path) == ["First document.", "Second document here."]


def test_blank_line_separated_documents(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(
        "\nDoc one, line one.\nDoc one, line two.\n\n\n  \nDoc two.\n\nDoc three.\n",
        encoding="utf-8",
    )
    assert load_text_corpus(path) == ["Doc one, line one.\nDoc one, line two.", "Doc two.", "Doc three."]


def test_directory_is_read_recursively_in_path_order(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("From b/z.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("\ufeffFrom a, with a byte-order mark.\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("Not a .txt file.\n", encoding="utf-8")
    assert load_text_corpus(tmp_path) == ["From a, with a byte-order mark.", "From b/z."]
    assert load_text_corpus([tmp_path / "b", tmp_path / "a.txt"]) == ["From b/z.", "From a, with a byte-order mark."]


def test_corpus_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_corpus(tmp_path / "absent.txt")
    with pytest.raises(ValueError, match="holds no .txt files"):
        load_text_corpus(tmp_path)
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no text"):
        load_text_corpus(tmp_path)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin\.txt is not UTF-8 text \(undecodable byte at offset 3\)"):
        load_text_corpus(tmp_path)
    latin.unlink()
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ValueError, match=r"image\.txt looks like a binary file"):
        load_text_corpus(tmp_path)


def test_split_sentences_rule():
    document = (
        'It ends here. "Quoted" starts next! Does it? Yes (really).\n'
        "Values such as e.g. the ones below stay whole. 3 more follow.\n"
        'He said "stop." Then (at last) it did.\n'
        "\n"
        "A line never continues into the next"
    )
    assert split_sentences(document) == [
        "It ends here.",
        '"Quoted" starts next!',
        "Does it?",
        "Yes (really).",
        "Values such as e.g. the ones below stay whole.",
        "3 more follow.",
        'He said "stop."',
        "Then (at last) it did.",
        "A line never continues into the next",
    ]


def test_offline_corpus_gives_enough_sentence_pairs(documents):
    counts = [len(split_sentences(d)) for d in documents]
    assert sum(counts) > 2000
    assert sum(c >= 2 for c in counts) > 0.8 * len(documents)


def test_train_validation_split_is_deterministic_and_disjoint():
    documents = [f"document {i}" for i in range(50)]
    train, validation = train_validation_split(documents, 0.2, seed=3)
    assert len(validation) == 10 and len(train) == 40
    assert sorted(train + validation) == sorted(documents)
    assert train == [d for d in documents if d in train]  # input order kept
    assert train_validation_split(documents, 0.2, seed=3) == (train, validation)
    assert train_validation_split(documents, 0.2, seed=4)[1] != validation
    assert len(train_validation_split(documents[:5], 0.01)[1]) == 1
    assert train_validation_split(documents, 0.0) == (documents, [])
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\)"):
        train_validation_split(documents, 1.5)
    with pytest.raises(ValueError, match="Cannot hold out 1 of 1 documents"):
        train_validation_split(documents[:1], 0.5)
