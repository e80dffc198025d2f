"""GLUE readers on the real glue_data files, on small files in GLUE's format, and the built-in suite."""

import filecmp
import os

import numpy as np
import pytest

from benchmarks import tasks
from benchmarks.builtin_suite import write_builtin_suite

GLUE_DIR = os.environ.get("GLUE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "glue_data"))
needs_glue = pytest.mark.skipif(not os.path.isdir(GLUE_DIR), reason=f"real GLUE data not found at {GLUE_DIR}")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return write_builtin_suite(str(tmp_path_factory.mktemp("suite")))


@needs_glue
def test_real_cola_has_no_header_and_keeps_every_row():
    dev = tasks.read_split(GLUE_DIR, "CoLA", "dev")
    assert len(dev) == 1043  # the file has no header and no final newline
    assert dev.texts[0] == ("The sailors rode the breeze clear of the rocks.",)
    assert dev.labels.tolist()[:5] == [1, 1, 1, 1, 0]
    assert int(dev.labels.sum()) == 721  # CoLA dev: 721 acceptable of 1043


@needs_glue
def test_real_mrpc_byte_order_mark_and_string_columns():
    dev = tasks.read_split(GLUE_DIR, "MRPC", "dev")
    assert len(dev) == 408 and int(dev.labels.sum()) == 279
    assert dev.texts[0][0].startswith("He said the foodservice pie business")
    test = tasks.read_split(GLUE_DIR, "MRPC", "test")
    assert test.labels is None and test.index[:3].tolist() == ["0", "1", "2"]


@needs_glue
def test_real_string_labels_and_scores():
    rte = tasks.read_split(GLUE_DIR, "RTE", "dev")
    assert len(rte) == 277 and rte.labels[0] == tasks.NLI_2.index("not_entailment")
    qnli = tasks.read_split(GLUE_DIR, "QNLI", "dev")
    assert len(qnli) == 5463 and qnli.labels[0] == tasks.NLI_2.index("entailment")
    stsb = tasks.read_split(GLUE_DIR, "STS-B", "dev")
    assert stsb.labels.dtype == np.float32 and stsb.labels[:2].tolist() == [5.0, 4.75]
    sst = tasks.read_split(GLUE_DIR, "SST-2", "train")
    assert len(sst) == 67349


def write(path, text, encoding="utf-8"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)


def test_qqp_skips_malformed_rows(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    rows = "0\t1\t2\tHow do I learn?\tHow can I learn?\t1\n1\t3\t4\tA question with no pair\n2\t5\t6\tWhy?\tWhere?\t0\n"
    write(tmp_path / "QQP" / "dev.tsv", header + rows)
    dev = tasks.read_split(str(tmp_path), "QQP", "dev")
    assert dev.labels.tolist() == [1, 0] and dev.skipped_rows == 1
    assert dev.texts[1] == ("Why?", "Where?")


def test_mnli_label_is_last_column_in_train_and_dev(tmp_path):
    front = "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2"
    write(tmp_path / "MNLI" / "train.tsv", front + "\tlabel1\tgold_label\n0\t1\t1e\tfiction\t-\t-\t-\t-\tA man sleeps.\tA man rests.\tentailment\tentailment\n")
    dev = front + "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
    dev += "0\t1\t1n\tslate\t-\t-\t-\t-\tIt rains.\tIt is dry.\tcontradiction\tcontradiction\tneutral\tcontradiction\tcontradiction\tcontradiction\n"
    write(tmp_path / "MNLI" / "dev_mismatched.tsv", dev)
    assert tasks.read_split(str(tmp_path), "MNLI-m", "train").labels.tolist() == [tasks.NLI_3.index("entailment")]
    mismatched = tasks.read_split(str(tmp_path), "MNLI-mm", "dev")
    assert mismatched.texts == [("It rains.", "It is dry.")]
    assert mismatched.labels.tolist() == [tasks.NLI_3.index("contradiction")]


def test_missing_file_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(tasks.GlueDataError, match=r"QNLI train file not found: .*QNLI/train.tsv.*--glue-dir"):
        tasks.read_split(str(tmp_path), "QNLI", "train")


def test_wrong_columns_are_named(tmp_path):
    write(tmp_path / "RTE" / "dev.tsv", "index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(tasks.GlueDataError, match=r"column 'sentence1' not found .*premise"):
        tasks.read_split(str(tmp_path), "RTE", "dev")


def test_empty_split_and_bad_label_are_reported(tmp_path):
    write(tmp_path / "SST-2" / "dev.tsv", "sentence\tlabel\n")
    with pytest.raises(tasks.GlueDataError, match="no examples"):
        tasks.read_split(str(tmp_path), "SST-2", "dev")
    write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\nfine film\tpositive\n")
    with pytest.raises(tasks.GlueDataError, match=r"line 2: label 'positive' is not one of \('0', '1'\)"):
        tasks.read_split(str(tmp_path), "SST-2", "train")


def test_truncated_row_is_reported(tmp_path):
    write(tmp_path / "CoLA" / "train.tsv", "gj04\t1\t\tA fine sentence.\ngj04\t1\n")
    with pytest.raises(tasks.GlueDataError, match="line 2: expected at least 4"):
        tasks.read_split(str(tmp_path), "CoLA", "train")


def test_builtin_suite_covers_every_task_and_format(suite):
    for name, task in tasks.TASKS.items():
        for split in task.splits:
            examples = tasks.read_split(suite, task, split)
            assert len(examples) > 0
            if split == "test":
                assert examples.labels is None
            elif task.is_regression:
                assert 0.0 <= examples.labels.min() and examples.labels.max() == 5.0
            else:
                # every label of the task occurs: each metric is exercised
                assert set(examples.labels.tolist()) == set(range(task.num_classes)), (name, split)
    with open(os.path.join(suite, "MRPC", "train.tsv"), "rb") as handle:
        assert handle.read(3) == b"\xef\xbb\xbf"
    with open(os.path.join(suite, "CoLA", "dev.tsv"), encoding="utf-8") as handle:
        assert handle.readline().count("\t") == 3  # no header
    assert tasks.read_split(suite, "QQP", "train").skipped_rows == 1


def test_builtin_suite_labels_follow_their_rules(suite):
    from benchmarks.builtin_suite import NEGATIVE, POSITIVE

    opinion_words = {}
    for split in ("train", "dev"):
        sst = tasks.read_split(suite, "SST-2", split)
        for (sentence,), label in zip(sst.texts, sst.labels):
            (word,) = [w for w in POSITIVE + NEGATIVE if f" {w}" in sentence]
            assert (word in POSITIVE) == (label == 1)
            opinion_words.setdefault(split, set()).add(word)
    assert not opinion_words["train"] & opinion_words["dev"]  # dev needs knowing unseen words
    stsb = tasks.read_split(suite, "STS-B", "dev")
    assert set(stsb.labels.tolist()) == {0.0, 2.5, 5.0}
    mnli = tasks.read_split(suite, "MNLI-m", "dev")
    for (premise, hypothesis), label in zip(mnli.texts, mnli.labels):
        if tasks.NLI_3[label] == "entailment":
            assert premise.startswith(hypothesis.rstrip("."))


def test_builtin_suite_is_reproducible(suite, tmp_path):
    again = write_builtin_suite(str(tmp_path / "again"))
    comparison = filecmp.dircmp(suite, again)
    assert not comparison.diff_files and not comparison.left_only
    for folder in comparison.common_dirs:
        assert filecmp.cmpfiles(suite, again, [os.path.join(folder, f) for f in os.listdir(os.path.join(suite, folder))], shallow=False)[1] == []
