"""Reader for GLUE as Hugging Face `datasets` caches it: the hub's `nyu-mll/glue` Parquet files.

`datasets.load_dataset("nyu-mll/glue", "sst2")` downloads Parquet shards to
`$HF_HUB_CACHE/datasets--nyu-mll--glue/snapshots/<revision>/<config>/<split>-NNNNN-of-NNNNN.parquet`
(default cache `~/.cache/huggingface/hub`). This module reads those files in
place with pandas (pyarrow), without the `datasets` library or a network, and
returns the same `Examples` as the TSV reader: the hub's label ids become the
class indices of GLUE's strings (`Task.hub.label_names`), test indices come
from the `idx` column.

Pass `--glue-dir hf` for the default cache, or the path of the cache, the
`datasets--nyu-mll--glue` folder or one snapshot.
"""

import glob
import os

import numpy as np

from benchmarks.glue.types import Examples, GlueDataError

REPOSITORY_FOLDERS = ("datasets--nyu-mll--glue", "datasets--glue")


def default_cache():
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    return os.path.join(home, "hub")


def snapshot_dir(location, configs):
    """The snapshot folder `location` ("hf", a hub cache, a repository folder or a snapshot)
    points to, or None when it is not a Hugging Face cache of GLUE (one of `configs` in it)."""
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
    if any(os.path.isdir(os.path.join(location, config)) for config in configs) and \
            glob.glob(os.path.join(location, "*", "*.parquet")):
        return location
    return None


def shard_paths(snapshot, task, split):
    """The Parquet shards of one split, in order ([] when the split is absent)."""
    hub_split = task.hub.splits.get(split)
    if hub_split is None:
        return []
    return sorted(glob.glob(os.path.join(snapshot, task.hub.config, f"{hub_split}-*.parquet")))


def read_split(snapshot, task, split):
    """`Examples` of one split of `task` from the hub snapshot folder `snapshot`."""
    import pandas as pd

    layout = task.hub
    paths = shard_paths(snapshot, task, split)
    if not paths:
        raise GlueDataError(f"{task.name} {split} is not in the Hugging Face cache {snapshot} (looked for "
                            f"{layout.config}/<split>-*.parquet). Run `datasets.load_dataset('nyu-mll/glue', "
                            f"'{layout.config}')` once online, or use the glue_data TSV layout.")
    frame = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
    missing = [c for c in (*layout.text_columns, "label", "idx") if c not in frame.columns]
    if missing:
        raise GlueDataError(f"{paths[0]}: columns {missing} missing (has {list(frame.columns)}); "
                            f"not the nyu-mll/glue {layout.config} data.")
    if frame.empty:
        raise GlueDataError(f"{paths[0]} has no examples (empty split).")
    texts = list(zip(*(frame[c].astype(str).tolist() for c in layout.text_columns)))
    labels = frame["label"].to_numpy()
    if split == "test" or (labels == -1).all():  # the hub marks hidden test labels -1
        labels = None
    elif layout.label_names is None:
        labels = labels.astype("float32")
    else:
        if labels.min() < 0 or labels.max() >= len(layout.label_names):
            raise GlueDataError(f"{paths[0]}: label ids outside 0..{len(layout.label_names) - 1}.")
        ours = np.array([task.label_names.index(name) for name in layout.label_names], "int32")
        labels = ours[labels.astype("int64")]
    return Examples(texts, labels, frame["idx"].to_numpy())
