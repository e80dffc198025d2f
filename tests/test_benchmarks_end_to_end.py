"""`python -m benchmarks run/report` end to end on small slices of real GLUE data.

One tiny from-scratch BERT and one broken submission go through CoLA (one
sentence, Matthews correlation), MRPC (pairs, F1 and accuracy) and STS-B
(regression). The first run is interrupted after two fine-tunings; the second
completes without redoing them; a third does nothing. The reports on every task
and metric are checked from a stored board in test_benchmarks_reports.py.
"""

import base64
import html.parser
import io
import json
import os
import zipfile

import matplotlib.image
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from benchmarks import __main__ as cli
from benchmarks import encoding, finetune, metrics, reports, results, runner, submissions, tasks
from benchmarks.builtin_suite import write_builtin_suite

GLUE_DIR = os.environ.get("GLUE_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "glue_data"))
TASKS = ["CoLA", "MRPC", "STS-B"]
TRAIN, EVAL = 32, 24
pytestmark = pytest.mark.skipif(not os.path.isdir(GLUE_DIR), reason=f"real GLUE data not found at {GLUE_DIR}")


def run_arguments(folder, submission_folders):
    return ["run", *submission_folders, "--glue-dir", GLUE_DIR, "--tasks", *TASKS, "--seeds", "0", "--epochs", "1",
            "--batch-size", "16", "--sequence-length", "48", "--learning-rates", "1e-3",
            "--max-train-examples", str(TRAIN), "--max-eval-examples", str(EVAL),
            "--db", str(folder / "results.db"), "--cache-dir", str(folder / "tokenized"), "--no-progress"]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    folder = tmp_path_factory.mktemp("benchmark")
    texts = [t for name in TASKS for pair in runner.sample(tasks.read_split(GLUE_DIR, name, "train"), TRAIN).texts for t in pair]
    good = submissions.make_baseline_submission(
        str(folder / "tiny"), texts, name="bert-tiny", vocabulary_size=400,
        num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=48,
    )
    broken = folder / "broken"
    broken.mkdir()
    (broken / "encoder.keras").write_text("not a model")
    (broken / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"]) + "\n")
    (broken / "metadata.json").write_text(json.dumps({"name": "broken-one", "model_family": "BERT", "pretraining_flops": 1e15}))

    calls = []
    real_fine_tune = finetune.fine_tune

    def interrupted(*args, **kwargs):
        calls.append("first")
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed during the third fine-tuning
        return real_fine_tune(*args, **kwargs)

    def counted(*args, **kwargs):
        calls.append("second")
        return real_fine_tune(*args, **kwargs)

    arguments = run_arguments(folder, [str(broken), good])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finetune, "fine_tune", interrupted)
        with pytest.raises(KeyboardInterrupt):
            cli.main(arguments)
    database = results.ResultsDatabase(str(folder / "results.db"))
    before = {run.task: (run.id, run.finished_at) for run in database.runs()}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(finetune, "fine_tune", counted)
        cli.main(arguments + ["--report", str(folder / "report")])
        cli.main(arguments)  # everything is done: nothing runs
    return {"folder": folder, "database": database, "before": before, "calls": calls, "good": good}


def test_interrupted_run_resumes_without_redoing_work(benchmark):
    assert benchmark["calls"].count("first") == 3
    assert benchmark["calls"].count("second") == 1  # the interrupted task only
    assert set(benchmark["before"]) == {"CoLA", "MRPC"}
    runs = {run.task: run for run in benchmark["database"].runs()}
    assert sorted(runs) == sorted(TASKS)
    for task, (run_id, finished_at) in benchmark["before"].items():
        assert (runs[task].id, runs[task].finished_at) == (run_id, finished_at)


def test_runs_record_everything(benchmark):
    for run in benchmark["database"].runs():
        assert run.submission_hash == submissions.submission_hash(benchmark["good"])
        assert run.train_examples == TRAIN and run.seed == 0
        assert run.config["learning_rate"] == 1e-3 and run.config["max_train_examples"] == TRAIN
        assert run.wall_seconds > 0 and run.train_sequences_per_second > 0
        assert run.train_tokens_per_second > run.train_sequences_per_second
        assert "backend" in run.hardware and run.versions["keras"]
        assert run.metadata_json["name"] == "bert-tiny"


def test_metrics_equal_sklearn_scipy_from_stored_predictions(benchmark):
    database = benchmark["database"]
    for run in database.runs():
        stored = database.predictions(run.id, "dev")
        expected = tasks.read_split(GLUE_DIR, run.task, "dev").head(EVAL)
        labels = np.array([p.label for p in stored])
        predictions = np.array([p.prediction for p in stored])
        np.testing.assert_allclose(labels, expected.labels)
        assert [p.example_index for p in stored] == [str(i) for i in expected.index]
        independent = {
            "CoLA": lambda: {"mcc": 100 * sklearn.metrics.matthews_corrcoef(labels, predictions)},
            "MRPC": lambda: {"f1": 100 * sklearn.metrics.f1_score(labels, predictions),
                             "accuracy": 100 * sklearn.metrics.accuracy_score(labels, predictions)},
            "STS-B": lambda: {"pearson": 100 * scipy.stats.pearsonr(predictions, labels)[0],
                              "spearman": 100 * scipy.stats.spearmanr(predictions, labels)[0]},
        }[run.task]()
        assert run.metrics == pytest.approx(independent), run.task
        assert len(database.predictions(run.id, "test")) == EVAL


def test_broken_submission_gets_its_own_error_row(benchmark):
    failures = benchmark["database"].failures()
    assert [(f.submission_name, f.task) for f in failures] == [("broken-one", "*")]
    assert "is not a saved Keras model" in failures[0].error
    table = reports.leaderboard(benchmark["database"])
    assert table["Submission"].tolist() == ["bert-tiny", "broken-one"]
    assert "not a saved Keras model" in table.loc[1, "Error"]


def test_markdown_and_gradescope_reports(benchmark):
    folder, database = benchmark["folder"] / "report", benchmark["database"]
    markdown = (folder / "leaderboard.md").read_text()
    runs = {run.task: run for run in database.runs()}
    mrpc = runs["MRPC"].public_metrics  # reports show the public half of dev until staff reveal the private one
    assert f"| {mrpc['f1']:.1f}/{mrpc['accuracy']:.1f} |" in markdown
    assert "broken-one" in markdown and "GLUE score (official)" in markdown
    gradescope = json.loads((folder / "gradescope" / "bert-tiny" / "results.json").read_text())
    entries = {entry["name"]: entry["value"] for entry in gradescope["leaderboard"]}
    assert entries["GLUE score"] == "-"  # three of nine tasks: no official score
    assert entries["CoLA"] == round(runs["CoLA"].public_metrics["mcc"], 2)
    mean = np.mean([metrics.task_score(t, runs[t].public_metrics) for t in TASKS])
    assert gradescope["score"] == round(mean, 2)


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.images, self.cells = [], [], []

    def handle_starttag(self, tag, attributes):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attributes)["src"])

    def handle_data(self, data):
        if self.tags and self.tags[-1] in ("td", "th"):
            self.cells.append(data.strip())


def test_html_report_is_self_contained(benchmark):
    page = PageParser()
    page.feed((benchmark["folder"] / "report" / "leaderboard.html").read_text())
    assert "table" in page.tags and "bert-tiny" in page.cells and "broken-one" in page.cells
    assert len(page.images) == 3 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for src in page.images:
        image = matplotlib.image.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert image.shape[0] > 100 and image.std() > 0  # a real, non-blank plot


def test_glue_zip_has_glue_label_strings(benchmark):
    with zipfile.ZipFile(benchmark["folder"] / "report" / "glue-submission-bert-tiny.zip") as archive:
        assert sorted(archive.namelist()) == sorted(task + ".tsv" for task in TASKS)
        mrpc = archive.read("MRPC.tsv").decode().splitlines()
        stsb = archive.read("STS-B.tsv").decode().splitlines()
    assert mrpc[0] == "index\tprediction" and len(mrpc) == EVAL + 1
    test_index = tasks.read_split(GLUE_DIR, "MRPC", "test").index[:EVAL].tolist()
    assert [line.split("\t")[0] for line in mrpc[1:]] == test_index
    assert {line.split("\t")[1] for line in mrpc[1:]} <= {"0", "1"}
    float(stsb[1].split("\t")[1])


def test_fine_tuning_is_deterministic_on_cpu(benchmark):
    database = benchmark["database"]
    run = next(r for r in database.runs() if r.task == "CoLA")
    config = finetune.FineTuneConfig(**run.config)
    arrays = runner.TaskArrays(GLUE_DIR, str(benchmark["folder"] / "tokenized"), config)
    encoder = submissions.load_encoder(benchmark["good"])
    pair_encoder = encoding.PairEncoder(os.path.join(benchmark["good"], "vocab.txt"), True, config.sequence_length)
    trained = finetune.fine_tune(encoder, arrays.load(pair_encoder, "CoLA", "train"), 2, config, seed=0)
    again = finetune.predict(trained.model, arrays.load(pair_encoder, "CoLA", "dev"), 2)
    assert again.tolist() == [p.prediction for p in database.predictions(run.id, "dev")]


def test_mnli_model_also_scores_mismatched_and_ax(benchmark, tmp_path):
    suite = write_builtin_suite(str(tmp_path / "suite"), train_size=32, dev_size=24, test_size=12)
    good = benchmark["good"]
    database = results.ResultsDatabase(str(tmp_path / "results.db"))
    config = finetune.FineTuneConfig(learning_rate=1e-3, epochs=1, batch_size=16, sequence_length=48)
    runner.BenchmarkRunner(database, suite, ["MNLI-m", "MNLI-mm", "AX"], [0], config, str(tmp_path / "cache"), progress=False).run([good])
    runs = {run.task: run for run in database.runs()}
    assert sorted(runs) == ["AX", "MNLI-m", "MNLI-mm"]
    assert {run.train_examples for run in runs.values()} == {32} and runs["AX"].metrics.keys() == {"mcc"}
    assert len(database.predictions(runs["AX"].id, "test")) == 24  # the unlabeled diagnostic.tsv
    reports.write_glue_zip(database, runs["AX"].submission_hash, str(tmp_path / "glue.zip"))
    with zipfile.ZipFile(tmp_path / "glue.zip") as archive:
        assert sorted(archive.namelist()) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]
        labels = {line.split("\t")[1] for line in archive.read("AX.tsv").decode().splitlines()[1:]}
    assert labels <= {"entailment", "neutral", "contradiction"}
