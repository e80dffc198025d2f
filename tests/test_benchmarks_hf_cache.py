"""GLUE read from a Hugging Face hub cache (`nyu-mll/glue` Parquet files) equals GLUE read from glue_data.

The cache is built here from slices of the real GLUE files, the way the hub
stores them: its own column names, labels as ClassLabel ids in the hub's
order (RTE/QNLI: entailment = 0; WNLI: entailment = 1), `idx`, hidden test labels -1.
"""

import numpy as np
import pandas as pd
import pytest

from benchmarks import tasks
from tests.test_benchmarks_data import GLUE_DIR, needs_glue

# The hub's ClassLabel names, id order, as its dataset card lists them.
HUB = {
    "SST-2": ("sst2", ("sentence",), ["negative", "positive"], {"0": "negative", "1": "positive"}),
    "MRPC": ("mrpc", ("sentence1", "sentence2"), ["not_equivalent", "equivalent"],
             {"0": "not_equivalent", "1": "equivalent"}),
    "RTE": ("rte", ("sentence1", "sentence2"), ["entailment", "not_entailment"], None),
    "STS-B": ("stsb", ("sentence1", "sentence2"), None, None),
}
ROWS = 40


def hub_cache(root, glue_dir):
    """root/datasets--nyu-mll--glue/{refs/main, snapshots/<rev>/<config>/<split>-00000-of-00001.parquet}."""
    repository = root / "datasets--nyu-mll--glue"
    snapshot = repository / "snapshots" / "0123abcd"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text("0123abcd")
    for name, (config, columns, names, spelling) in HUB.items():
        (snapshot / config).mkdir(parents=True)
        for split, hub_split in (("train", "train"), ("dev", "validation")):
            examples = tasks.read_split(glue_dir, name, split).head(ROWS)
            task = tasks.get_task(name)
            if names is None:
                labels = examples.labels.astype("float32")
            else:
                glue_strings = [task.label_names[i] for i in examples.labels]
                labels = [names.index(spelling[s] if spelling else s) for s in glue_strings]
            frame = pd.DataFrame({column: [t[i] for t in examples.texts] for i, column in enumerate(columns)})
            frame["label"], frame["idx"] = labels, np.arange(len(frame))
            frame.to_parquet(snapshot / config / f"{hub_split}-00000-of-00001.parquet")
    return str(root)


@needs_glue
@pytest.mark.parametrize("name", sorted(HUB))
@pytest.mark.parametrize("split", ["train", "dev"])
def test_hub_cache_reads_like_glue_data(tmp_path, name, split):
    cache = hub_cache(tmp_path, GLUE_DIR)
    ours, theirs = tasks.read_split(cache, name, split), tasks.read_split(GLUE_DIR, name, split).head(ROWS)
    assert ours.texts == theirs.texts
    np.testing.assert_array_equal(ours.labels, theirs.labels)
    assert tasks.has_split(cache, tasks.get_task(name), split)


@needs_glue
def test_default_cache_location_and_missing_splits(tmp_path, monkeypatch):
    hub_cache(tmp_path, GLUE_DIR)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert len(tasks.read_split("hf", "RTE", "dev")) == ROWS
    assert not tasks.has_split("hf", tasks.get_task("RTE"), "test")
    with pytest.raises(tasks.GlueDataError, match="CoLA train is not in the Hugging Face cache.*load_dataset"):
        tasks.read_split("hf", "CoLA", "train")
