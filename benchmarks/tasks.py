"""The GLUE tasks, each described once, and `read_split`, which reads either layout.

Each `Task` (see `benchmarks.glue.types`) says where its files are in the
GLUE download script's `glue_data` folder and in the Hugging Face hub's
`nyu-mll/glue` dataset, which columns hold the text and the label, how the
label is spelled, and how the task is scored. `read_split(glue_dir, task,
split)` reads a `glue_data` folder (`benchmarks.glue.tsv`) or a Hugging Face
cache (`benchmarks.glue.hub`), whichever `glue_dir` is, and returns
`Examples`. Adding a task is adding one record to `TASKS`.
"""

import hashlib
import os

from benchmarks.glue import hub, tsv
from benchmarks.glue.types import Examples, GlueDataError, HubLayout, Split, Task

__all__ = ["DEFAULT_GLUE_DIR", "Examples", "GLUE_TASKS", "GlueDataError", "Split", "TASKS", "TRAINED_BY", "Task",
           "data_digest", "get_task", "has_split", "read_split", "split_files"]

# The one default GLUE location of the kit: $GLUE_DIR, else ../shared/glue_data next to the repository.
DEFAULT_GLUE_DIR = os.environ.get(
    "GLUE_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "glue_data")
)

BINARY = ("0", "1")
NLI_2 = ("entailment", "not_entailment")
NLI_3 = ("contradiction", "entailment", "neutral")  # order of GLUE's processors
HUB_NLI_3 = ("entailment", "neutral", "contradiction")  # the hub's ClassLabel order

_MNLI_TEXT = ("sentence1", "sentence2")
_HUB_MNLI_TEXT = ("premise", "hypothesis")


def _pair_task(name, columns, label_names, metric_names, hub_config, hub_label_names=None, label="label"):
    """The common shape: <name>/{train,dev,test}.tsv with a header, the same columns on the hub."""
    return Task(
        name, name,
        splits={"train": Split("train.tsv", columns, label), "dev": Split("dev.tsv", columns, label),
                "test": Split("test.tsv", columns, index_column="index")},
        hub=HubLayout(hub_config, columns, hub_label_names or label_names),
        label_names=label_names, metric_names=metric_names, submission_file=f"{name}.tsv",
    )


def _mnli(name, dev_file, test_file, hub_dev, hub_test):
    return Task(
        name, "MNLI",
        splits={"train": Split("train.tsv", _MNLI_TEXT, -1), "dev": Split(dev_file, _MNLI_TEXT, -1),
                "test": Split(test_file, _MNLI_TEXT, index_column="index")},
        hub=HubLayout("mnli", _HUB_MNLI_TEXT, HUB_NLI_3, {"train": "train", "dev": hub_dev, "test": hub_test}),
        label_names=NLI_3, metric_names=("accuracy",), submission_file=f"{name}.tsv",
    )


TASKS = {
    task.name: task
    for task in [
        Task(
            "CoLA", "CoLA",
            splits={"train": Split("train.tsv", (3,), 1, header=False), "dev": Split("dev.tsv", (3,), 1, header=False),
                    "test": Split("test.tsv", ("sentence",), index_column="index")},
            hub=HubLayout("cola", ("sentence",), BINARY),
            label_names=BINARY, metric_names=("mcc",), submission_file="CoLA.tsv",
        ),
        _pair_task("SST-2", ("sentence",), BINARY, ("accuracy",), "sst2"),
        Task(
            "MRPC", "MRPC",
            splits={split: Split(f"{split}.tsv", ("#1 String", "#2 String"), "Quality", encoding="utf-8-sig")
                    for split in ("train", "dev")}
            | {"test": Split("test.tsv", ("#1 String", "#2 String"), index_column="index", encoding="utf-8-sig")},
            hub=HubLayout("mrpc", ("sentence1", "sentence2"), BINARY),
            label_names=BINARY, metric_names=("f1", "accuracy"), submission_file="MRPC.tsv",
        ),
        _pair_task("STS-B", ("sentence1", "sentence2"), None, ("pearson", "spearman"), "stsb", label="score"),
        Task(
            "QQP", "QQP",
            splits={split: Split(f"{split}.tsv", ("question1", "question2"), "is_duplicate", skip_malformed=True)
                    for split in ("train", "dev")}
            | {"test": Split("test.tsv", ("question1", "question2"), index_column="id", skip_malformed=True)},
            hub=HubLayout("qqp", ("question1", "question2"), BINARY),
            label_names=BINARY, metric_names=("f1", "accuracy"), submission_file="QQP.tsv",
        ),
        _mnli("MNLI-m", "dev_matched.tsv", "test_matched.tsv", "validation_matched", "test_matched"),
        _mnli("MNLI-mm", "dev_mismatched.tsv", "test_mismatched.tsv", "validation_mismatched", "test_mismatched"),
        _pair_task("QNLI", ("question", "sentence"), NLI_2, ("accuracy",), "qnli"),
        _pair_task("RTE", ("sentence1", "sentence2"), NLI_2, ("accuracy",), "rte"),
        _pair_task("WNLI", ("sentence1", "sentence2"), BINARY, ("accuracy",), "wnli"),
        # AX is scored with the MNLI model; "dev" is the labelled diagnostic set, used when
        # present (the hub has only the unlabelled test split). Without it, AX gives the
        # GLUE server's AX.tsv and no dev score.
        Task(
            "AX", "diagnostic",
            splits={"dev": Split("diagnostic-full.tsv", ("Premise", "Hypothesis"), "Label"),
                    "test": Split("diagnostic.tsv", ("sentence1", "sentence2"), index_column="index")},
            hub=HubLayout("ax", _HUB_MNLI_TEXT, HUB_NLI_3, {"test": "test"}),
            label_names=NLI_3, metric_names=("mcc",), submission_file="AX.tsv", required_splits=("test",),
        ),
    ]
}

# The nine tasks of the GLUE score, in the leaderboard's column order.
GLUE_TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI-m", "MNLI-mm", "QNLI", "RTE", "WNLI")
# Tasks that are fine-tuned; the others borrow a model (MNLI-mm, AX use MNLI-m's).
TRAINED_BY = {"MNLI-mm": "MNLI-m", "AX": "MNLI-m"}
HUB_CONFIGS = tuple(sorted({task.hub.config for task in TASKS.values()}))


def get_task(name):
    try:
        return TASKS[name]
    except KeyError:
        raise GlueDataError(f"Unknown task {name!r}; choose from {', '.join(TASKS)}.") from None


def split_files(glue_dir, task, split):
    """The files a split is read from (a TSV file, or a Hugging Face cache's Parquet shards); [] when absent."""
    snapshot = hub.snapshot_dir(glue_dir, HUB_CONFIGS)
    if snapshot is not None:
        return hub.shard_paths(snapshot, task, split)
    if split not in task.splits:
        return []
    path = tsv.split_path(glue_dir, task, split)
    return [path] if os.path.exists(path) else []


def has_split(glue_dir, task, split):
    return bool(split_files(glue_dir, task, split))


def data_digest(glue_dir, task, split):
    """sha256 of the bytes of the files a split is read from ("" when absent)."""
    paths = split_files(glue_dir, task, split)
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def read_split(glue_dir, task, split):
    """Read one split of `task` (a name or a `Task`) from `glue_dir`, a glue_data folder or a
    Hugging Face cache (see `benchmarks.glue.hub`); raise GlueDataError on bad data."""
    task = get_task(task) if isinstance(task, str) else task
    snapshot = hub.snapshot_dir(glue_dir, HUB_CONFIGS)
    if snapshot is not None:
        return hub.read_split(snapshot, task, split)
    return tsv.read_split(glue_dir, task, split)
