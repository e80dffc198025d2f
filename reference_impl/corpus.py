"""Text corpora for tokenizer training and pretraining.

Two sources, both returning a list of documents (a document is a string of
sentences or paragraphs separated by newlines):

* `offline_corpus()`: real English prose that every Python installation has
  without a download, the Language Reference text that CPython ships in the
  standard-library module `pydoc_data.topics` (the text behind `help("if")`).
  Each help topic is one document; its prose paragraphs are its lines.
* `load_text_corpus(path)`: a course's own corpus, plain-text files.

`split_sentences()` cuts a document into sentences (for next-sentence and
sentence-order prediction pairs) and `train_validation_split()` holds out
documents deterministically.
"""

import random
import re
from pathlib import Path

# Blocks of the pydoc text that are not prose: grammar productions, tables,
# and the rows of `*`, `=` or `-` that underline headings.
_GRAMMAR_MARK = "::="
_TABLE_LINE = re.compile(r"^[+|]")
_UNDERLINE_ROW = re.compile(r"^[*=\-]{3,}\s*$")
# Markers that begin a prose paragraph without being part of its words:
# list bullets ("* ") and footnote numbers ("[3] ").
_LEADING_MARKER = re.compile(r"^(?:\* |\[\d+\] )")

# A sentence ends at ".", "!" or "?" (optionally followed by a closing quote
# or bracket, which stays with the sentence) when whitespace and then an
# upper-case letter, a digit, an opening quote or "(" follow. Abbreviations
# followed by a lower-case word ("e.g. the") therefore do not end one.
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]]))\s+(?=[A-Z0-9\"“‘(])"
)


def offline_corpus():
    """Returns the CPython Language Reference prose as a list of documents.

    One document per `pydoc_data.topics` help topic, in the module's (sorted)
    topic order; each document is that topic's prose paragraphs, one per
    line. Indented code examples, grammar rules (`::=`), tables and heading
    underlines are dropped; heading lines go with their underline.
    """
    from pydoc_data.topics import topics

    documents = []
    for name in sorted(topics):
        paragraphs = _prose_paragraphs(topics[name])
        if paragraphs:
            documents.append("\n".join(paragraphs))
    return documents


def _prose_paragraphs(text):
    """Paragraphs of one help topic that are running prose, each on one line."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        if not lines[0] or lines[0][0].isspace():
            continue  # indented: a code example or a continuation
        if any(_UNDERLINE_ROW.match(line) for line in lines):
            continue  # a heading and its underline
        if any(_TABLE_LINE.match(line) for line in lines):
            continue
        if any(_GRAMMAR_MARK in line for line in lines):
            continue
        paragraph = " ".join(line.strip() for line in lines)
        paragraph = _LEADING_MARKER.sub("", paragraph).replace("**", "")
        paragraph = " ".join(paragraph.split())
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


def load_text_corpus(path):
    """Reads a plain-text corpus: UTF-8 `.txt` files, directories of them, or a list of either.

    Each file is split into documents in one of two layouts, detected per
    file: if the file has a blank line between text lines, documents are
    separated by blank lines (and the lines inside a document are its
    sentences); otherwise every line is one document. Directories are read
    recursively, files in sorted path order, so the result does not depend
    on the file system's listing order.

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a file is not UTF-8 text, a directory holds no `.txt`
            file, or no document has any text.
    """
    paths = [Path(p) for p in path] if isinstance(path, (list, tuple)) else [Path(path)]
    documents = []
    for path in paths:
        for file in _corpus_files(path):
            documents.extend(_documents_in_file(file))
    if not documents:
        names = ", ".join(str(p) for p in paths) or "(no paths given)"
        raise ValueError(
            f"Corpus at {names} has no text (every file is empty or blank). "
            "Add documents: one per line, or separated by blank lines."
        )
    return documents


def _corpus_files(path):
    if not path.exists():
        raise FileNotFoundError(
            f"Corpus path {path} does not exist. Pass a UTF-8 .txt file or a "
            "directory of .txt files."
        )
    if not path.is_dir():
        return [path]
    files = sorted(path.rglob("*.txt"))
    if not files:
        raise ValueError(
            f"Directory {path} holds no .txt files. Put the corpus in UTF-8 "
            "text files ending in .txt (one document per line, or documents "
            "separated by blank lines)."
        )
    return files


def _documents_in_file(file):
    data = file.read_bytes()
    if b"\x00" in data:
        raise ValueError(
            f"{file} looks like a binary file (it contains NUL bytes), not "
            "text. Convert it to UTF-8 plain text or remove it from the corpus."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{file} is not UTF-8 text (undecodable byte at offset "
            f"{error.start}). Re-save it as UTF-8, e.g. `iconv -f latin1 -t "
            f"utf-8 {file.name}`, or remove it from the corpus."
        ) from None
    lines = [line.strip() for line in text.splitlines()]
    # Blank lines between the first and last text lines mean the
    # blank-line-separated layout; leading or trailing ones do not count.
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    if "" not in lines:
        return lines
    blocks = re.split(r"\n{2,}", "\n".join(lines))
    return [block for block in blocks if block]


def split_sentences(document):
    """Splits a document into sentences.

    Rule: every line is split separately (a line never continues into the
    next), and inside a line a sentence ends after ".", "!" or "?" (and any
    closing quote or bracket) that is followed by whitespace and then an
    upper-case letter, a digit, an opening quote or "(". Empty pieces are
    dropped. Simple and predictable rather than linguistically complete:
    "Dr. Smith" is split, "e.g. the" is not.
    """
    sentences = []
    for line in document.split("\n"):
        for sentence in _SENTENCE_END.split(line.strip()):
            if sentence:
                sentences.append(sentence)
    return sentences


def train_validation_split(documents, validation_fraction=0.1, seed=0):
    """Splits documents into (train, validation) lists, deterministically.

    A seeded shuffle picks `round(len(documents) * validation_fraction)`
    documents for validation (at least one when the fraction is positive);
    both lists keep the input order. The same inputs and seed always give
    the same split.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction must be in [0, 1), got {validation_fraction}."
        )
    documents = list(documents)
    count = round(len(documents) * validation_fraction)
    if validation_fraction > 0:
        count = max(count, 1)
    if count >= len(documents):
        raise ValueError(
            f"Cannot hold out {count} of {len(documents)} documents and keep "
            "any for training. Use a larger corpus or a smaller "
            "validation_fraction."
        )
    order = list(range(len(documents)))
    random.Random(seed).shuffle(order)
    held_out = set(order[:count])
    train = [d for i, d in enumerate(documents) if i not in held_out]
    validation = [d for i, d in enumerate(documents) if i in held_out]
    return train, validation
