"""Reader for the `glue_data` layout the GLUE download script writes (`<folder>/<file>.tsv`).

Quirks handled (as written by the download script):
- CoLA train/dev have no header: source, label, original label, sentence.
- MRPC train/dev start with a UTF-8 byte-order mark (read as "utf-8-sig").
- MNLI has dev_matched/dev_mismatched and test_matched/test_mismatched; its
  label is the last column ("gold_label"), whatever the number of columns.
- QQP has rows with too few fields; they are skipped and counted.
- AX is test-only (diagnostic/diagnostic.tsv); labels, if present, come from
  diagnostic/diagnostic-full.tsv (Premise, Hypothesis, Label).
Labels stay the strings GLUE uses ("entailment", "0", ...) on disk and become
class indices here, through `Task.label_names`.
"""

import csv
import os
import sys

import numpy as np

from benchmarks.glue.types import Examples, GlueDataError

# GLUE's TSV fields contain quotes that are not CSV quoting (QQP, MNLI).
csv.field_size_limit(sys.maxsize)


def split_path(glue_dir, task, split):
    return os.path.join(glue_dir, task.folder, task.splits[split].path)


def read_split(glue_dir, task, split):
    """`Examples` of one split of `task` from the glue_data folder `glue_dir`."""
    if split not in task.splits:
        raise GlueDataError(f"{task.name} has no {split!r} split (it has {', '.join(task.splits)}).")
    spec = task.splits[split]
    path = split_path(glue_dir, task, split)
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
