"""Kaggle-style rules: a private half of dev decides the final ranking, and a daily limit per student.

A tiny BERT is fine-tuned on the built-in suite's SST-2 (no pretraining: the
rules, not the score, are under test). Its private score is stored with the
run but absent from the public reports until `benchmarks reveal`; a student's
second submission on a day with a limit of one is refused with a clear message
in its own row, and re-running the first one is not refused.
"""

import json

import numpy as np
import pytest

from benchmarks import __main__ as cli
from benchmarks import baselines, finetune, reports, results, runner, splits, submissions, tasks
from benchmarks.builtin_suite import write_builtin_suite

CONFIG = finetune.FineTuneConfig(learning_rate=1e-3, epochs=1, batch_size=16, sequence_length=16,
                                 max_train_examples=None, max_eval_examples=None)


def student_submission(folder, suite, student, seed):
    texts = [t for pair in tasks.read_split(suite, "SST-2", "train").texts for t in pair]
    path = submissions.make_baseline_submission(str(folder), texts, name=f"{student}-{seed}", vocabulary_size=300,
                                                num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                                max_sequence_length=16)
    metadata_path = folder / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata_path.write_text(json.dumps(dict(metadata, student=student)))
    return path


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    folder = tmp_path_factory.mktemp("private")
    suite = write_builtin_suite(str(folder / "suite"), train_size=32, dev_size=48, test_size=4)
    database = results.ResultsDatabase(str(folder / "results.db"))
    cli.main(["limit", "--db", str(folder / "results.db"), "--per-day", "1"])
    first = student_submission(folder / "first", suite, "ada", 0)
    second = student_submission(folder / "second", suite, "ada", 1)
    bench = runner.BenchmarkRunner(database, suite, ["SST-2"], [0], CONFIG, str(folder / "cache"), progress=False)
    bench.run([first])
    bench.run([first, second])  # the first again (already scored: free), then a second one the same day
    baselines.run_baselines(database, suite, ["SST-2"], CONFIG)
    return folder, suite, database


def test_the_private_split_is_fixed_by_example_digest(board):
    _, suite, _ = board
    dev = tasks.read_split(suite, "SST-2", "dev")
    mask = splits.private_mask(dev.texts)
    assert 0 < mask.sum() < len(mask)
    np.testing.assert_array_equal(mask, splits.private_mask(list(reversed(dev.texts)))[::-1])  # order-free


def test_private_score_is_stored_but_hidden_until_revealed(board):
    folder, _, database = board
    (run,) = [run for run in database.runs() if run.submission_name == "ada-0"]
    assert run.private_metrics and run.public_metrics and run.private_metrics != run.public_metrics
    private = f"{run.private_metrics['accuracy']:.1f}"
    public_table = reports.leaderboard(database, references=True)
    assert reports.PRIVATE_COLUMN not in public_table.columns
    row = public_table[public_table["Submission"] == "ada-0"].iloc[0]
    assert row["SST-2"] == f"{run.public_metrics['accuracy']:.1f}"
    reports.write_all(database, str(folder / "public"))
    markdown = (folder / "public" / "leaderboard.md").read_text()
    assert reports.PRIVATE_COLUMN not in markdown and "hidden until staff reveal it" in markdown
    assert row["Student"] == reports.pseudonym("ada") and "ada" not in row["Student"]

    cli.main(["reveal", "--db", str(folder / "results.db"), "--output", str(folder / "revealed")])
    revealed = reports.leaderboard(database)
    assert revealed.loc[revealed["Submission"] == "ada-0", reports.PRIVATE_COLUMN].iloc[0] == pytest.approx(
        run.private_metrics["accuracy"])
    assert f"| {private} |" in (folder / "revealed" / "leaderboard.md").read_text()
    cli.main(["reveal", "--db", str(folder / "results.db"), "--hide"])
    assert reports.PRIVATE_COLUMN not in reports.leaderboard(database).columns


def test_daily_limit_refuses_a_further_submission_with_a_clear_message(board):
    _, _, database = board
    assert {run.submission_name for run in database.runs()} == {"ada-0", baselines.MAJORITY, baselines.BAG_OF_WORDS}
    (failure,) = database.failures()
    assert failure.submission_name == "ada-1" and failure.task == "*"
    assert "ada has used 1 of 1 scored submissions today (UTC); ada-1 was not scored" in failure.error
    assert "The next one is accepted after 00:00 UTC" in failure.error
