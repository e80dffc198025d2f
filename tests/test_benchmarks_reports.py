"""Reports from a database filled with known runs (no training): aggregates, seeds, grids, all eleven GLUE files."""

import datetime
import json
import zipfile

import numpy as np
import pytest

from benchmarks import metrics, reports, results, tasks
from benchmarks.builtin_suite import write_builtin_suite
from lms.gradescope import problems
from reference_impl.text_to_text import NO_LABEL
from tests.test_benchmarks_metrics import BERT_BASE_TEST


def stored_run(task, seed, task_metrics, learning_rate=2e-5, predictions=(), name="model-a"):
    config = {"learning_rate": learning_rate}
    return results.Run(
        submission_hash=name * 4, submission_name=name, task=task, seed=seed,
        config_hash=results.config_hash(config), config=config,
        metadata_json={"name": name, "model_family": "BERT", "pretraining_flops": 1e18},
        metrics=task_metrics, train_examples=10, wall_seconds=1.0,
        train_sequences_per_second=10.0, train_tokens_per_second=100.0, hardware="cpu",
        versions={}, finished_at=datetime.datetime.now(datetime.UTC), predictions=list(predictions),
    )


@pytest.fixture
def database(tmp_path):
    return results.ResultsDatabase(str(tmp_path / "results.db"))


def test_leaderboard_reproduces_published_aggregates(database):
    database.add_runs([stored_run(task, 0, values) for task, values in BERT_BASE_TEST.items()])
    row = reports.leaderboard(database).iloc[0]
    assert round(row["GLUE score (official)"], 1) == 78.3 and round(row["Avg (BERT paper)"], 1) == 79.6
    assert row["MRPC"] == "88.9/84.8" and row["STS-B"] == "87.1/85.8"
    assert "| 78.3 | 79.6 |" in reports.to_markdown(reports.leaderboard(database))


def test_seeds_give_mean_and_std_and_the_best_learning_rate_is_reported(database):
    database.add_runs([
        stored_run("SST-2", 0, {"accuracy": 90.0}), stored_run("SST-2", 1, {"accuracy": 92.0}),
        stored_run("SST-2", 0, {"accuracy": 80.0}, learning_rate=1e-4),
        stored_run("SST-2", 1, {"accuracy": 84.0}, learning_rate=1e-4),
    ])
    table = reports.leaderboard(database)
    assert table.loc[0, "SST-2"] == f"91.0 ± {np.std([90.0, 92.0], ddof=1):.1f}"
    assert table.loc[0, "Seeds"] == 2 and table.loc[0, "GLUE score (official)"] is None


def test_gradescope_results_have_the_leaderboard_field(database, tmp_path):
    database.add_runs([stored_run(task, 0, values) for task, values in BERT_BASE_TEST.items()])
    (path,) = reports.write_gradescope(database, str(tmp_path / "gradescope"))
    with open(path) as handle:
        result = json.load(handle)
    assert result["score"] == round(metrics.glue_score(BERT_BASE_TEST), 2)
    assert result["leaderboard"][0] == {"name": "GLUE score", "value": round(metrics.glue_score(BERT_BASE_TEST), 2),
                                        "order": "desc"}
    assert problems(result) == [] and all(test["max_score"] == 100 for test in result["tests"])
    assert {entry["name"] for entry in result["leaderboard"]} >= set(tasks.GLUE_TASKS)


def test_glue_zip_has_all_eleven_files_with_label_strings(database, tmp_path):
    suite = write_builtin_suite(str(tmp_path / "suite"), train_size=8, dev_size=8, test_size=6)
    runs = []
    for name in reports.TASK_ORDER:
        task = tasks.get_task(name)
        test = tasks.read_split(suite, task, "test")
        values = np.arange(len(test)) % task.num_classes if not task.is_regression else np.linspace(0, 5, len(test))
        predictions = [
            results.Prediction(split="test", position=i, example_index=str(index), prediction=float(value), label=None)
            for i, (index, value) in enumerate(zip(test.index, values))
        ]
        runs.append(stored_run(name, 0, {m: 50.0 for m in task.metric_names}, predictions=predictions))
    database.add_runs(runs)
    missing = reports.write_glue_zip(database, "model-a" * 4, str(tmp_path / "glue.zip"))
    assert missing == []
    with zipfile.ZipFile(tmp_path / "glue.zip") as archive:
        assert sorted(archive.namelist()) == sorted(reports.SUBMISSION_FILES) and len(archive.namelist()) == 11
        files = {name: archive.read(name).decode().splitlines() for name in archive.namelist()}
    assert all(lines[0] == "index\tprediction" for lines in files.values())
    assert [line.split("\t")[1] for line in files["MNLI-m.tsv"][1:4]] == ["contradiction", "entailment", "neutral"]
    assert {line.split("\t")[1] for line in files["QNLI.tsv"][1:]} == {"entailment", "not_entailment"}
    assert {line.split("\t")[1] for line in files["CoLA.tsv"][1:]} == {"0", "1"}
    assert files["STS-B.tsv"][-1].endswith("\t5.000") and len(files["AX.tsv"]) == 12 + 1


def test_glue_zip_writes_a_text_to_text_answer_that_is_no_label_word_as_the_first_label():
    # The server takes one of the task's labels on every line.
    assert reports.prediction_label("RTE", NO_LABEL) == "entailment"
    assert reports.prediction_label("RTE", 1.0) == "not_entailment"


def test_html_report_renders_in_headless_chromium(database, tmp_path):
    from benchmarks import browser

    database.add_runs([stored_run(task, 0, values) for task, values in BERT_BASE_TEST.items()] +
                      [stored_run(task, 0, values, name="model-b") for task, values in BERT_BASE_TEST.items()])
    html = reports.write_html(database, str(tmp_path / "leaderboard.html"))
    view = browser.open_page(html, str(tmp_path / "shot.png"))
    assert view.errors == [] and view.failed_requests == []
    assert view.title == "GLUE leaderboard" and view.table_rows == 3  # two submissions and the published BERT-base
    assert [alt for alt, _, _ in view.images] == ["Per-task scores", "Score against parameters",
                                                  "Score against pretraining compute"]
    assert all(width > 100 and height > 100 for _, width, height in view.images), view.images
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_on_failures_only_and_on_runs_without_scores(database, tmp_path):
    database.add_failure("f" * 64, "broken-one", "*", "metadata.json missing")
    assert reports.leaderboard(database)["Error"].tolist() == ["[*] metadata.json missing"]
    reports.write_all(database, str(tmp_path / "only-failures"))
    # A run stored without dev metrics (AX without its labelled file, or an older database).
    database.add_runs([stored_run("AX", 0, {}), stored_run("SST-2", 0, {"accuracy": 90.0}, name="model-b")])
    database.add_failure("model-b" * 4, "model-b", "CoLA", "CoLA dev file not found")
    table = reports.leaderboard(database)
    assert table["Submission"].tolist() == ["model-b", "model-a", "broken-one", "model-b"]
    assert table.loc[0, "SST-2"] == "90.0" and table.loc[1, "Mean of tasks run"] != table.loc[1, "Mean of tasks run"]
    written, _ = reports.write_all(database, str(tmp_path / "mixed"))
    assert "model-a" in open(written["markdown"]).read()
