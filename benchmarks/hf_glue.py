"""GLUE as Hugging Face `datasets` caches it: the hub's `nyu-mll/glue` Parquet files.

`datasets.load_dataset("nyu-mll/glue", "sst2")` downloads Parquet shards to
`$HF_HUB_CACHE/datasets--nyu-mll--glue/snapshots/<revision>/<config>/<split>-NNNNN-of-NNNNN.parquet`
(default cache `~/.cache/huggingface/hub`). This module reads those files in
place with pandas (pyarrow), without the `datasets` library or a network, and
returns the same `Examples` as the TSV readers: labels become the GLUE
strings' class indices, test indices come from the `idx` column.

Pass `--glue-dir hf` for the default cache, or the path of the cache, the
`datasets--nyu-mll--glue` folder or one snapshot.
"""

import glob
import os

import numpy as np

REPOSITORY_FOLDERS = ("datasets--nyu-mll--glue", "datasets--glue")

# task -> (config, {our split: hub split}, text columns, hub label names in id order (None: score))
LAYOUT = {
    "CoLA": ("cola", {}, ("sentence",), ("0", "1")),
    "SST-2": ("sst2", {}, ("sentence",), ("0", "1")),
    "MRPC": ("mrpc", {}, ("sentence1", "sentence2"), ("0", "1")),
    "STS-B": ("stsb", {}, ("sentence1", "sentence2"), None),
    "QQP": ("qqp", {}, ("question1", "question2"), ("0", "1")),
    "MNLI-m": ("mnli", {"dev": "validation_matched", "test": "test_matched"}, ("premise", "hypothesis"),
               ("entailment", "neutral", "contradiction")),
    "MNLI-mm": ("mnli", {"dev": "validation_mismatched", "test": "test_mismatched"}, ("premise", "hypothesis"),
                ("entailment", "neutral", "contradiction")),
    "QNLI": ("qnli", {}, ("question", "sentence"), ("entailment", "not_entailment")),
    "RTE": ("rte", {}, ("sentence1", "sentence2"), ("entailment", "not_entailment")),
    "WNLI": ("wnli", {}, ("sentence1", "sentence2"), ("0", "1")),
    # The hub has only AX's unlabelled test split.
    "AX": ("ax", {"dev": None}, ("premise", "hypothesis"), ("entailment", "neutral", "contradiction")),
}
DEFAULT_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def default_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return os.path.join(home, "hub")


def snapshot_dir(location):
    """The snapshot folder `location` ("hf", a hub cache, a repository folder or a snapshot)
    points to, or None when it is not a Hugging Face cache of GLUE."""
    location = default_cache() if location == "hf" else location
    if not location or not os.path.isdir(location):
        return None
    for name in REPOSITORY_FOLDERS:
        if os.path.isdir(os.path.join(location, name)):
            location = os.path.join(location, name)
            break
    if os.path.isdir(os.path.join(location, "snapshots")):
        reference = os.path.join(location, "refs", "main")
        if os.path.isfile(reference):
            with open(reference) as handle:
                return os.path.join(location, "snapshots", handle.read().strip())
        snapshots = sorted(glob.glob(os.path.join(location, "snapshots", "*")), key=os.path.getmtime)
        return snapshots[-1] if snapshots else None
    if any(os.path.isdir(os.path.join(location, config)) for config, *_ in LAYOUT.values()) and \
            glob.glob(os.path.join(location, "*", "*.parquet")):
        return location
    return None


def shard_paths(snapshot, task_name, split):
    """The Parquet shards of one split, in order ([] when the split is absent)."""
    config, splits, _, _ = LAYOUT[task_name]
    hub_split = splits.get(split, DEFAULT_SPLITS.get(split))
    if hub_split is None:
        return []
    return sorted(glob.glob(os.path.join(snapshot, config, f"{hub_split}-*.parquet")))


def read_split(snapshot, task, split, error):
    """`Examples` of `task` (a tasks.Task) from the snapshot; `error` builds the exception."""
    import pandas as pd

    from benchmarks.tasks import Examples

    config, _, text_columns, hub_labels = LAYOUT[task.name]
    paths = shard_paths(snapshot, task.name, split)
    if not paths:
        raise error(f"{task.name} {split} is not in the Hugging Face cache {snapshot} (looked for "
                    f"{config}/<split>-*.parquet). Run `datasets.load_dataset('nyu-mll/glue', "
                    f"'{config}')` once online, or use the glue_data TSV layout.")
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    missing = [c for c in (*text_columns, "label", "idx") if c not in frame.columns]
    if missing:
        raise error(f"{paths[0]}: columns {missing} missing (has {list(frame.columns)}); "
                    f"not the nyu-mll/glue {config} data.")
    if frame.empty:
        raise error(f"{paths[0]} has no examples (empty split).")
    texts = list(zip(*(frame[c].astype(str).tolist() for c in text_columns)))
    labels = frame["label"].to_numpy()
    if split == "test" or (labels == -1).all():  # the hub marks hidden test labels -1
        labels = None
    elif hub_labels is None:
        labels = labels.astype("float32")
    else:
        if labels.min() < 0 or labels.max() >= len(hub_labels):
            raise error(f"{paths[0]}: label ids outside 0..{len(hub_labels) - 1}.")
        ours = np.array([task.label_names.index(name) for name in hub_labels], "int32")
        labels = ours[labels.astype("int64")]
    return Examples(texts, labels, frame["idx"].to_numpy())
