"""GLUE tasks and readers for the `glue_data` layout of the GLUE download script.

Each `Task` says where its files are, which columns hold the text and the
label, and how the label is spelled. Readers return an `Examples` table
(texts, labels as class indices or floats, and the `index` GLUE wants in a
submission). Labels stay the strings GLUE uses ("entailment", "0", ...) on
disk and become class indices only here, through `Task.label_names`.

Quirks handled (as written by the download script):
- CoLA train/dev have no header: source, label, original label, sentence.
- MRPC train/dev start with a UTF-8 byte-order mark (read as "utf-8-sig").
- MNLI has dev_matched/dev_mismatched and test_matched/test_mismatched; its
  label is the last column ("gold_label"), whatever the number of columns.
- QQP has rows with too few fields; they are skipped and counted.
- AX is test-only (diagnostic/diagnostic.tsv); labels, if present, come from
  diagnostic/diagnostic-full.tsv (Premise, Hypothesis, Label).
"""

import csv
import dataclasses
import os
import sys

import numpy as np

from benchmarks import hf_glue

# GLUE's TSV fields contain quotes that are not CSV quoting (QQP, MNLI).
csv.field_size_limit(sys.maxsize)


class GlueDataError(ValueError):
    """Bad or missing GLUE data; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Split:
    """One file of a task: its path under the task folder and its columns.

    `text_columns` and `label_column` are header names, or integer positions
    for header-less files (CoLA) and for columns known by position (MNLI's
    last column). `header` says whether the first line is a header.
    """

    path: str
    text_columns: tuple
    label_column: object = None
    index_column: object = None
    header: bool = True
    encoding: str = "utf-8"
    skip_malformed: bool = False


@dataclasses.dataclass(frozen=True)
class Task:
    """A GLUE task: its files, label names (None for regression) and metric."""

    name: str
    folder: str
    splits: dict
    label_names: tuple
    metric_names: tuple
    submission_file: str

    @property
    def is_regression(self):
        return self.label_names is None

    @property
    def num_classes(self):
        return 1 if self.is_regression else len(self.label_names)


@dataclasses.dataclass
class Examples:
    """Texts (one or two segments per example), labels and GLUE indices."""

    texts: list  # list of tuples of strings, one tuple per example
    labels: np.ndarray  # int class ids, float scores, or None (unlabeled)
    index: np.ndarray  # the id GLUE's submission files use
    skipped_rows: int = 0

    def __len__(self):
        return len(self.texts)

    def head(self, count):
        """The first `count` examples (quick runs, small test slices)."""
        labels = None if self.labels is None else self.labels[:count]
        return Examples(self.texts[:count], labels, self.index[:count], self.skipped_rows)


BINARY = ("0", "1")
NLI_2 = ("entailment", "not_entailment")
NLI_3 = ("contradiction", "entailment", "neutral")  # order of GLUE's processors

_MNLI_TEXT = ("sentence1", "sentence2")

TASKS = {
    task.name: task
    for task in [
        Task(
            "CoLA",
            "CoLA",
            {
                "train": Split("train.tsv", (3,), 1, header=False),
                "dev": Split("dev.tsv", (3,), 1, header=False),
                "test": Split("test.tsv", ("sentence",), index_column="index"),
            },
            BINARY,
            ("mcc",),
            "CoLA.tsv",
        ),
        Task(
            "SST-2",
            "SST-2",
            {
                "train": Split("train.tsv", ("sentence",), "label"),
                "dev": Split("dev.tsv", ("sentence",), "label"),
                "test": Split("test.tsv", ("sentence",), index_column="index"),
            },
            BINARY,
            ("accuracy",),
            "SST-2.tsv",
        ),
        Task(
            "MRPC",
            "MRPC",
            {
                "train": Split("train.tsv", ("#1 String", "#2 String"), "Quality", encoding="utf-8-sig"),
                "dev": Split("dev.tsv", ("#1 String", "#2 String"), "Quality", encoding="utf-8-sig"),
                "test": Split(
                    "test.tsv", ("#1 String", "#2 String"), index_column="index", encoding="utf-8-sig"
                ),
            },
            BINARY,
            ("f1", "accuracy"),
            "MRPC.tsv",
        ),
        Task(
            "STS-B",
            "STS-B",
            {
                "train": Split("train.tsv", ("sentence1", "sentence2"), "score"),
                "dev": Split("dev.tsv", ("sentence1", "sentence2"), "score"),
                "test": Split("test.tsv", ("sentence1", "sentence2"), index_column="index"),
            },
            None,
            ("pearson", "spearman"),
            "STS-B.tsv",
        ),
        Task(
            "QQP",
            "QQP",
            {
                "train": Split("train.tsv", ("question1", "question2"), "is_duplicate", skip_malformed=True),
                "dev": Split("dev.tsv", ("question1", "question2"), "is_duplicate", skip_malformed=True),
                "test": Split("test.tsv", ("question1", "question2"), index_column="id", skip_malformed=True),
            },
            BINARY,
            ("f1", "accuracy"),
            "QQP.tsv",
        ),
        Task(
            "MNLI-m",
            "MNLI",
            {
                "train": Split("train.tsv", _MNLI_TEXT, -1),
                "dev": Split("dev_matched.tsv", _MNLI_TEXT, -1),
                "test": Split("test_matched.tsv", _MNLI_TEXT, index_column="index"),
            },
            NLI_3,
            ("accuracy",),
            "MNLI-m.tsv",
        ),
        Task(
            "MNLI-mm",
            "MNLI",
            {
                "train": Split("train.tsv", _MNLI_TEXT, -1),
                "dev": Split("dev_mismatched.tsv", _MNLI_TEXT, -1),
                "test": Split("test_mismatched.tsv", _MNLI_TEXT, index_column="index"),
            },
            NLI_3,
            ("accuracy",),
            "MNLI-mm.tsv",
        ),
        Task(
            "QNLI",
            "QNLI",
            {
                "train": Split("train.tsv", ("question", "sentence"), "label"),
                "dev": Split("dev.tsv", ("question", "sentence"), "label"),
                "test": Split("test.tsv", ("question", "sentence"), index_column="index"),
            },
            NLI_2,
            ("accuracy",),
            "QNLI.tsv",
        ),
        Task(
            "RTE",
            "RTE",
            {
                "train": Split("train.tsv", ("sentence1", "sentence2"), "label"),
                "dev": Split("dev.tsv", ("sentence1", "sentence2"), "label"),
                "test": Split("test.tsv", ("sentence1", "sentence2"), index_column="index"),
            },
            NLI_2,
            ("accuracy",),
            "RTE.tsv",
        ),
        Task(
            "WNLI",
            "WNLI",
            {
                "train": Split("train.tsv", ("sentence1", "sentence2"), "label"),
                "dev": Split("dev.tsv", ("sentence1", "sentence2"), "label"),
                "test": Split("test.tsv", ("sentence1", "sentence2"), index_column="index"),
            },
            BINARY,
            ("accuracy",),
            "WNLI.tsv",
        ),
        # AX is scored with the MNLI model; "dev" is the labelled diagnostic set.
        Task(
            "AX",
            "diagnostic",
            {
                "dev": Split("diagnostic-full.tsv", ("Premise", "Hypothesis"), "Label"),
                "test": Split("diagnostic.tsv", ("sentence1", "sentence2"), index_column="index"),
            },
            NLI_3,
            ("mcc",),
            "AX.tsv",
        ),
    ]
}

# The nine tasks of the GLUE score, in the leaderboard's column order.
GLUE_TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "WNLI")
# Tasks that are fine-tuned; the others borrow a model (MNLI-mm, AX use MNLI-m's).
TRAINED_BY = {"MNLI-mm": "MNLI-m", "AX": "MNLI-m"}


def get_task(name):
    try:
        return TASKS[name]
    except KeyError:
        raise GlueDataError(f"Unknown task {name!r}; choose from {', '.join(TASKS)}.") from None


def task_path(glue_dir, task, split):
    """The file a split is read from (its first Parquet shard for a Hugging Face cache)."""
    snapshot = hf_glue.snapshot_dir(glue_dir)
    if snapshot is not None:
        shards = hf_glue.shard_paths(snapshot, task.name, split)
        return shards[0] if shards else os.path.join(snapshot, task.name, split)
    return os.path.join(glue_dir, task.folder, task.splits[split].path)


def has_split(glue_dir, task, split):
    return split in task.splits and os.path.exists(task_path(glue_dir, task, split))


def read_split(glue_dir, task, split):
    """Read one split of `task` from `glue_dir` (a glue_data folder or a Hugging Face
    cache, see `benchmarks.hf_glue`); raise GlueDataError on bad data."""
    task = get_task(task) if isinstance(task, str) else task
    snapshot = hf_glue.snapshot_dir(glue_dir)
    if snapshot is not None:
        return hf_glue.read_split(snapshot, task, split, GlueDataError)
    if split not in task.splits:
        raise GlueDataError(f"{task.name} has no {split!r} split (it has {', '.join(task.splits)}).")
    spec = task.splits[split]
    path = task_path(glue_dir, task, split)
    if not os.path.exists(path):
        raise GlueDataError(
            f"{task.name} {split} file not found: {path}. Point --glue-dir (or GLUE_DIR) at a folder "
            f"laid out like the GLUE download script's glue_data/ (or write the offline suite with "
            f"`python -m benchmarks suite DIR` and pass DIR)."
        )
    with open(path, encoding=spec.encoding, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = rows.pop(0) if spec.header and rows else None
    positions = _column_positions(task, split, path, spec, header)
    width = max(positions["texts"] + [positions.get("label", 0), positions.get("index", 0)]) + 1
    texts, labels, index, skipped = [], [], [], 0
    for row_number, row in enumerate(rows, start=2 if header else 1):
        if not row:
            continue
        if len(row) < width or (header and len(row) != len(header) and spec.skip_malformed):
            if spec.skip_malformed:
                skipped += 1
                continue
            raise GlueDataError(
                f"{path}, line {row_number}: expected at least {width} tab-separated fields, "
                f"found {len(row)}. The file is truncated or not in GLUE's TSV format."
            )
        texts.append(tuple(row[p] for p in positions["texts"]))
        index.append(row[positions["index"]] if "index" in positions else len(index))
        if "label" in positions:
            labels.append(_parse_label(task, row[positions["label"]], path, row_number))
    if not texts:
        raise GlueDataError(f"{path} has no examples (empty split). Re-download the task or drop it from --tasks.")
    if "label" in positions:
        labels = np.asarray(labels, dtype="float32" if task.is_regression else "int32")
    else:
        labels = None
    return Examples(texts, labels, np.asarray(index), skipped)


def _column_positions(task, split, path, spec, header):
    def find(column):
        if isinstance(column, int):
            return column if column >= 0 else len(header) + column
        if header is None or column not in header:
            raise GlueDataError(
                f"{path}: column {column!r} not found (header: {header}). {task.name} {split} needs "
                f"columns {list(spec.text_columns)}"
                + (f" and {spec.label_column!r}" if spec.label_column is not None else "")
                + "; check the file is the GLUE version of the task."
            )
        return header.index(column)

    positions = {"texts": [find(c) for c in spec.text_columns]}
    if spec.label_column is not None:
        positions["label"] = find(spec.label_column)
    if spec.index_column is not None:
        positions["index"] = find(spec.index_column)
    return positions


def _parse_label(task, text, path, row_number):
    if task.is_regression:
        try:
            return float(text)
        except ValueError:
            raise GlueDataError(f"{path}, line {row_number}: score {text!r} is not a number.") from None
    if text not in task.label_names:
        raise GlueDataError(
            f"{path}, line {row_number}: label {text!r} is not one of {task.label_names} "
            f"(wrong column, or not the GLUE version of {task.name})."
        )
    return task.label_names.index(text)
