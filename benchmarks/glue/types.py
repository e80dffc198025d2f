"""What the harness knows about a GLUE task, and what a reader returns.

A `Task` carries both layouts it may be read from: `splits` (files of the
GLUE download script's `glue_data` folder) and `hub` (the `nyu-mll/glue`
Parquet files as Hugging Face `datasets` caches them). Readers return
`Examples` with labels as class indices in the order of `Task.label_names`
(GLUE's strings), or float scores for regression.
"""

import dataclasses

import numpy as np


class GlueDataError(ValueError):
    """Bad or missing GLUE data; the message names the file and the fix."""


@dataclasses.dataclass(frozen=True)
class Split:
    """One `glue_data` file of a task: its path under the task folder and its columns.

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


HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclasses.dataclass(frozen=True)
class HubLayout:
    """A task in the hub's `nyu-mll/glue` dataset: config, split names, columns, label order.

    `splits` maps our split names to the hub's (None: the hub lacks it);
    `label_names` are GLUE's label strings in the hub's ClassLabel id order
    (None for a score).
    """

    config: str
    text_columns: tuple
    label_names: tuple
    splits: dict = dataclasses.field(default_factory=lambda: dict(HUB_SPLITS))


@dataclasses.dataclass(frozen=True)
class Task:
    """A GLUE task: both file layouts, label names (None for regression), metrics, GLUE server file.

    `required_splits` must be present for the task to be benchmarked (a
    missing one is an error naming the file); the others are used when there.
    """

    name: str
    folder: str
    splits: dict
    hub: HubLayout
    label_names: tuple
    metric_names: tuple
    submission_file: str
    required_splits: tuple = ("train", "dev")

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
        return self.select(slice(0, count))

    def select(self, rows):
        """The examples at `rows` (a slice or an index array)."""
        texts = self.texts[rows] if isinstance(rows, slice) else [self.texts[r] for r in rows]
        labels = None if self.labels is None else self.labels[rows]
        return Examples(texts, labels, self.index[rows], self.skipped_rows)
