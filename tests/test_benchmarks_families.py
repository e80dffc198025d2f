"""Every model family of the kit through one harness: a saved preset in, a leaderboard row out.

One tiny submission per family (BERT, RoBERTa, ALBERT, ELECTRA, GPT, ELMo),
each with its own tokenizer files, is fine-tuned for one step on a 32-example
slice of real RTE (../shared/glue_data; text pairs, so every family's pair
packing is used) and scored on 32 dev examples. A tiny T5 is fine-tuned text to
text on real RTE (label words) and STS-B (scores written as numbers), long
enough to write answers the harness reads back. A submission of an unknown family, and one whose tokenizer does not
fit its model, get an error in their own row while the others are scored; so do T5 submissions whose tokenizer does
not fit, before any training (with the pooling check, what `make test` runs of this file; the board is `long`).
"""

import inspect
import json
import os
import shutil

import numpy as np
import pytest

from benchmarks import finetune, metrics, reports, results, runner, submissions, tasks
from reference_impl import text_to_text
from reference_impl.families import FAMILIES

GLUE_DIR = tasks.DEFAULT_GLUE_DIR
TASKS = ["RTE"]
SEQUENCE_LENGTH = 32
CONFIG = finetune.FineTuneConfig(learning_rate=1e-3, epochs=1, batch_size=32, sequence_length=SEQUENCE_LENGTH,
                                 max_train_examples=32, max_eval_examples=32)
FAMILY_NAMES = ("bert", "roberta", "albert", "electra", "gpt", "elmo")
# T5 from scratch writes no label word after one step; 40 steps at a higher rate teach it to write them.
T5_TASKS = ["RTE", "STS-B"]
T5_CONFIG = finetune.FineTuneConfig(learning_rate=3e-3, epochs=10, batch_size=16, sequence_length=SEQUENCE_LENGTH,
                                    max_train_examples=64, max_eval_examples=32)

pytestmark = pytest.mark.skipif(not os.path.isdir(GLUE_DIR), reason="needs ../shared/glue_data")


def training_text(task_names=TASKS):
    return [t for name in task_names for pair in runner.sample(tasks.read_split(GLUE_DIR, name, "train"), 400).texts
            for t in pair]


def t5_training_text(task_names):
    """The tasks' sentences and targets: a text-to-text tokenizer must be able to write every label word."""
    return training_text(task_names) + [t for name in task_names for t in text_to_text.target_texts(name)]


def tiny_submission(folder, family_name, texts, vocabulary_size=300):
    """A from-scratch model of the family with a tokenizer trained on `texts`, saved as a submission."""
    family = FAMILIES[family_name]
    tokenizer = None
    arguments = dict(family.quick_size)
    if family.train_tokenizer is not None:
        tokenizer = family.train_tokenizer(texts, vocabulary_size, SEQUENCE_LENGTH)
        arguments["vocabulary_size"] = tokenizer.vocabulary_size
    if "max_sequence_length" in inspect.signature(family.backbone).parameters:  # not T5: relative positions
        arguments["max_sequence_length"] = SEQUENCE_LENGTH
    backbone = family.backbone(**arguments)
    return submissions.save_preset_submission(folder, backbone, tokenizer,
                                              {"name": f"tiny-{family_name}", "pretraining_flops": 0})


# Long (`make test-long`, not `make test`): seven models trained and fine-tuned, about 3 CPU-minutes.
@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("families")
    texts = training_text()
    good = [tiny_submission(str(folder / name), name, texts) for name in FAMILY_NAMES]
    unknown = tiny_submission(str(folder / "unknown"), "bert", texts)
    config_path = os.path.join(unknown, "config.json")
    config = json.loads(open(config_path).read())
    config["family"] = "xlstm"
    with open(config_path, "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(unknown, "metadata.json"), "w") as handle:
        json.dump({"name": "unknown-family", "pretraining_flops": 0}, handle)
    # A GPT whose embedding has 100 rows, saved with a 300-token tokenizer.
    mismatched = str(folder / "mismatched")
    gpt = FAMILIES["gpt"]
    tokenizer = gpt.train_tokenizer(texts, 300, SEQUENCE_LENGTH)
    small = gpt.backbone(**gpt.quick_size, vocabulary_size=100, max_sequence_length=SEQUENCE_LENGTH)
    submissions.save_preset_submission(mismatched, small, tokenizer, {"name": "mismatched-tokenizer",
                                                                      "pretraining_flops": 0})
    # A GPT asking for a pooler: "pooling" is for first-token heads only.
    pooling_on_gpt = shutil.copytree(good[FAMILY_NAMES.index("gpt")], folder / "pooling-on-gpt")
    with open(pooling_on_gpt / "metadata.json", "w") as handle:
        json.dump({"name": "pooling-on-gpt", "pretraining_flops": 0, "pooling": "first"}, handle)
    database = results.ResultsDatabase(str(folder / "results.db"))
    runner.BenchmarkRunner(database, GLUE_DIR, TASKS, [0], CONFIG, str(folder / "cache"), progress=False).run(
        good + [unknown, mismatched, str(pooling_on_gpt)])
    t5 = tiny_submission(str(folder / "t5"), "t5", t5_training_text(T5_TASKS))
    runner.BenchmarkRunner(database, GLUE_DIR, T5_TASKS, [0], T5_CONFIG, str(folder / "cache"), progress=False).run(
        [t5])
    return database, reports.leaderboard(database)


@pytest.mark.long
def test_every_family_gets_a_scored_row(board):
    database, table = board
    scored = table[table["Error"] == ""]
    assert sorted(scored["Submission"]) == sorted(f"tiny-{name}" for name in (*FAMILY_NAMES, "t5"))
    assert set(scored["Family"]) == {*FAMILY_NAMES, "t5"}
    assert sorted(int(rank) for rank in scored["Rank"]) == list(range(1, 8)) and (scored["Parameters"] != "").all()
    for run in database.runs():
        assert run.task in T5_TASKS and run.metrics.keys() == set(tasks.get_task(run.task).metric_names)
        assert len(database.predictions(run.id, "dev")) == 32


@pytest.mark.long
def test_t5_answers_are_read_back_as_labels_and_scores(board):
    database, table = board
    row = table[table["Submission"] == "tiny-t5"].iloc[0]
    assert row["Family"] == "t5" and row["RTE"] != "" and row["STS-B"] != ""
    runs = {run.task: run for run in database.runs() if run.submission_name == "tiny-t5"}
    assert sorted(runs) == sorted(T5_TASKS)
    for task, run in runs.items():
        stored = database.predictions(run.id, "dev")
        labels = np.array([p.label for p in stored])
        predicted = np.array([p.prediction for p in stored])
        # The official metrics of the answers read back, as for any other family.
        assert metrics.compute_metrics(task, labels, predicted) == pytest.approx(run.metrics)
        if task == "RTE":  # class ids of label words, NO_LABEL for anything else
            assert set(predicted) <= {0, 1, text_to_text.NO_LABEL}
            assert np.mean(predicted != text_to_text.NO_LABEL) > 0.5, predicted
        else:  # numbers as written, STSB_FALLBACK for no number
            assert np.mean(predicted != text_to_text.STSB_FALLBACK) > 0.5, predicted


@pytest.mark.long
def test_unknown_family_and_mismatched_tokenizer_get_their_own_error_rows(board):
    _, table = board
    errors = dict(zip(table["Submission"], table["Error"]))
    assert "holds family 'xlstm', which is not in the families" in errors["unknown-family"]
    assert ("the tokenizer has 300 tokens but the model's embedding has only 100 rows"
            in errors["mismatched-tokenizer"])
    assert "\"pooling\": 'first' is not allowed here" in errors["pooling-on-gpt"]


def test_metadata_pooling_chooses_what_a_first_token_head_reads():
    bert = FAMILIES["bert"].backbone(**FAMILIES["bert"].quick_size, vocabulary_size=100, max_sequence_length=16)
    assert finetune.build_classifier(bert, 2, 0.1, "bert").pooling == "pooled"  # BERT's NSP-trained pooler
    assert finetune.build_classifier(bert, 2, 0.1, "bert", pooling="first").pooling == "first"
    roberta = FAMILIES["roberta"].backbone(**FAMILIES["roberta"].quick_size, vocabulary_size=100,
                                           max_sequence_length=16)
    assert finetune.build_classifier(roberta, 2, 0.1, "roberta").pooling == "first"  # no pretrained pooler


def test_t5_submissions_whose_tokenizer_does_not_fit_get_their_own_error_rows(tmp_path):
    """Checked before any fine-tuning, so no model trains here."""
    t5 = FAMILIES["t5"]
    sentences = training_text()  # RTE's sentences have no "_": a vocabulary of them cannot write "not_entailment"

    def t5_submission(name, tokenizer, vocabulary_size=300):
        backbone = t5.backbone(**t5.quick_size, vocabulary_size=vocabulary_size)
        return submissions.save_preset_submission(str(tmp_path / name), backbone, tokenizer,
                                                  {"name": name, "pretraining_flops": 0})

    folders = [t5_submission("t5-mismatched", t5.train_tokenizer(t5_training_text(TASKS), 300, SEQUENCE_LENGTH),
                             vocabulary_size=100),
               t5_submission("t5-albert-vocabulary", FAMILIES["albert"].train_tokenizer(sentences, 300,
                                                                                        SEQUENCE_LENGTH)),
               t5_submission("t5-no-label-words", t5.train_tokenizer(sentences, 300, SEQUENCE_LENGTH))]
    database = results.ResultsDatabase(str(tmp_path / "results.db"))
    runner.BenchmarkRunner(database, GLUE_DIR, TASKS, [0], CONFIG, str(tmp_path / "cache"), progress=False).run(
        folders)
    assert database.runs() == []
    errors = {failure.submission_name: (failure.task, failure.error) for failure in database.failures()}
    assert errors["t5-mismatched"][0] == "*"
    assert "the tokenizer has 300 tokens but the model's embedding has only 100 rows" in errors["t5-mismatched"][1]
    assert errors["t5-albert-vocabulary"][0] == "*"
    assert ("Special token '</s>' is not in the vocabulary" in errors["t5-albert-vocabulary"][1]
            and "packing 't5'" in errors["t5-albert-vocabulary"][1])
    assert errors["t5-no-label-words"][0] == "RTE"
    assert "cannot write the RTE targets ['not_entailment']" in errors["t5-no-label-words"][1]
