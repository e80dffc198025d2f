"""experiments.gpu: the carried data it prepares, and every step of the GPU run at tiny sizes on the CPU.

The data are prepared here from the real GLUE files (a few examples of a
sentence-pair classification task and a regression task) and the real
MiniLM checkpoint; the run is `python -m experiments.gpu run --smoke`, all
four steps once for the module (as on the GPU), then one test per step's table.
"""

import os
import re

import keras
import numpy as np
import pytest
from rich.console import Console

from benchmarks import tasks
from experiments.elmo_sst2 import read_sst2
from benchmarks.encoding import PairEncoder
from benchmarks.finetune import FineTuneConfig
from benchmarks.runner import TaskArrays
from experiments import gpu
from reference_impl.bert import BertBackbone
from reference_impl.families import load_hugging_face

GLUE_DIR = os.environ.get("GLUE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "glue_data"))
TASKS = ("MRPC", "STS-B")
TRAIN_EXAMPLES, EVAL_EXAMPLES, LENGTH = 16, 8, 32

pytestmark = pytest.mark.skipif(not os.path.isdir(GLUE_DIR), reason=f"real GLUE data not found at {GLUE_DIR}")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu_data")
    manifest = gpu.prepare(GLUE_DIR, folder, sequence_length=LENGTH, max_train_examples=TRAIN_EXAMPLES,
                           max_eval_examples=EVAL_EXAMPLES, wheels=False, task_names=TASKS,
                           console=Console(quiet=True))
    return folder, manifest


@pytest.fixture(scope="module")
def smoke(prepared, tmp_path_factory):
    """The report of one smoke run of every step, and the folder it wrote its tables to."""
    out = tmp_path_factory.mktemp("gpu_results")
    return gpu.main(["run", "--data", str(prepared[0]), "--out", str(out), "--smoke"]), out


def number(text):
    return float(re.sub(r"[,%]", "", text))


def test_prepare_carries_the_harness_arrays(prepared, tmp_path):
    folder, manifest = prepared
    assert list(manifest["tasks"]) == list(TASKS)
    assert manifest["tasks"]["MRPC"]["full_train_examples"] == 3668
    assert manifest["tasks"]["STS-B"]["dev_examples"] == {"STS-B": EVAL_EXAMPLES}
    vocabulary = gpu.minilm_folder() / "vocab.txt"
    config = FineTuneConfig(sequence_length=LENGTH, max_train_examples=TRAIN_EXAMPLES, max_eval_examples=EVAL_EXAMPLES)
    for task, split in (("MRPC", "train"), ("STS-B", "dev")):
        carried = gpu.load_token_arrays(folder / "glue" / f"{task}-{split}.npz")
        harness = TaskArrays(GLUE_DIR, str(tmp_path), config).load(PairEncoder(vocabulary, True, LENGTH), task, split)
        for name in ("token_ids", "segment_ids", "padding_mask", "labels"):
            np.testing.assert_array_equal(carried[name], harness[name])
        assert carried["segment_ids"].max() == 1  # pairs: the second segment is there
    assert (folder / ".gitignore").read_text() == "*\n"


def test_half_precision_checkpoint_computes_what_the_original_does(prepared):
    folder, _ = prepared
    inputs = {k: v for k, v in gpu.load_token_arrays(folder / "glue" / "MRPC-train.npz").items() if k != "labels"}
    original = keras.ops.convert_to_numpy(load_hugging_face(gpu.minilm_folder())(inputs)["sequence_output"])
    rounded = keras.ops.convert_to_numpy(load_hugging_face(folder / "minilm")(inputs)["sequence_output"])
    assert (folder / "minilm" / "model.safetensors").stat().st_size < 0.51 * (
        gpu.minilm_folder() / "model.safetensors").stat().st_size
    assert np.linalg.norm(rounded - original) / np.linalg.norm(original) < 2e-3


def test_sst2_words_come_back_as_the_benchmark_reads_them(prepared):
    folder, manifest = prepared
    train, train_labels, dev, dev_labels = gpu.load_sst2_words(folder / "sst2_words.npz")
    expected, expected_labels = read_sst2(GLUE_DIR, "train")
    assert train == expected[:TRAIN_EXAMPLES] and len(dev) == EVAL_EXAMPLES == manifest["sst2"]["dev_sentences"]
    np.testing.assert_array_equal(train_labels, expected_labels[:TRAIN_EXAMPLES])
    assert dev == read_sst2(GLUE_DIR, "dev")[0][:EVAL_EXAMPLES]


def test_carried_size_over_the_limit_is_refused(prepared, monkeypatch):
    folder, _ = prepared
    total = gpu.check_carried_size(folder, Console(quiet=True))
    assert total > (folder / "minilm" / "model.safetensors").stat().st_size
    monkeypatch.setattr(gpu, "CARRY_LIMIT_BYTES", total - 1)
    with pytest.raises(SystemExit, match="over the 64 MiB|--max-train-examples"):
        gpu.check_carried_size(folder, Console(quiet=True))


@pytest.mark.long  # the whole GPU script once, on the CPU at smoke sizes
def test_smoke_measures_the_peak_in_mixed_precision(smoke):
    machine = dict(smoke[0].tables["machine"]["rows"])
    assert machine["bf16 mixed precision, XLA"] == "True, False"
    assert number(machine["measured bf16 matmul peak"].split()[0]) > 0
    assert sorted(path.name for path in smoke[1].glob("*.md")) == ["bert.md", "elmo.md", "glue.md", "gpt.md",
                                                                  "machine.md"]


@pytest.mark.long  # the whole GPU script once, on the CPU at smoke sizes
def test_smoke_bert_throughput_table(smoke):
    report, out = smoke
    rows = report.tables["bert"]["rows"]
    assert [row[0] for row in rows] == ["reference BertBackbone", "keras-hub BertBackbone"]
    for _, tokens_per_second, tflops, mfu, ratio in rows:
        assert number(tokens_per_second) > 0 and number(tflops) > 0 and number(mfu) > 0 and number(ratio) > 0
    assert rows[1][4] == "1.00"
    assert "| reference BertBackbone |" in (out / "bert.md").read_text()


@pytest.mark.long  # the whole GPU script once, on the CPU at smoke sizes
def test_smoke_gpt_throughput_and_larger_batches(smoke):
    rows = smoke[0].tables["gpt"]["rows"]
    assert [(row[0], row[1]) for row in rows] == [("reference GPT", 2), ("keras-hub GPT2", 2), ("reference GPT", 8)]
    assert all(number(row[2]) > 0 and number(row[4]) > 0 for row in rows)


@pytest.mark.long  # the whole GPU script once, on the CPU at smoke sizes
def test_smoke_glue_sweep_scores_every_carried_task(smoke):
    table = smoke[0].tables["glue"]
    assert [row[0] for row in table["rows"]] == list(TASKS)
    for task, train_examples, steps, *_, dev_examples, scores, score in table["rows"]:
        assert (train_examples, steps, dev_examples) == (TRAIN_EXAMPLES, 1, EVAL_EXAMPLES)
        assert [name for name in re.findall(r"(\w+) -?\d", scores)] == list(tasks.get_task(task).metric_names)
        assert -100 <= float(score) <= 100
    assert any(note.startswith("Full GLUE") and "GPU-hours" in note for note in table["notes"])


@pytest.mark.long  # the whole GPU script once, on the CPU at smoke sizes
def test_smoke_elmo_compares_pretrained_and_untrained_bilm(smoke):
    table = smoke[0].tables["elmo"]
    assert [row[0].split(" (")[0] for row in table["rows"]] == ["majority class", "frozen ELMo", "frozen untrained biLM"]
    assert all(0 <= float(row[1]) <= 1 for row in table["rows"])
    assert any(note.startswith("biLM pretraining on") for note in table["notes"])


def test_largest_batch_doubles_until_out_of_memory():
    def try_batch(batch):
        if batch > 64:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.2GiB.")
        return 1000.0 * batch

    rows = gpu.largest_batch(try_batch, 16, 1024, gpu.Budget(60))
    assert rows == [(16, 16000.0), (32, 32000.0), (64, 64000.0), (128, None)]
    assert gpu.largest_batch(try_batch, 16, 32, gpu.Budget(60)) == [(16, 16000.0), (32, 32000.0)]
    with pytest.raises(ValueError):
        gpu.largest_batch(lambda batch: int("not a number"), 16, 64, gpu.Budget(60))


def test_encoder_flops_leave_out_the_embedding_tables():
    backbone = BertBackbone.from_name("base")
    # BERT-base: 109,482,240 weights, 23,835,648 of them in the three embedding tables.
    assert backbone.count_params() == 109_482_240
    assert gpu.embedding_parameters(backbone) == (30522 + 512 + 2) * 768 == 23_835_648
    assert gpu.encoder_flops_per_token(backbone, 12, 768, 128) == 6 * (109_482_240 - 23_835_648) + 12 * 12 * 768 * 128
