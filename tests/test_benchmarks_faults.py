"""Faults in the data and in concurrent drivers (issue 20): each one a real run of the harness.

- a task whose dev or train file is missing is a failure row naming the file
  and the fix, never a run with empty metrics; once the file is back the run
  happens;
- the run key includes a digest of the task's data: changed data is re-run;
- two drivers opening one new SQLite file, or filling one new token cache, at
  the same moment both succeed;
- two `python -m benchmarks run` processes started together on one new
  database and one new cache folder both finish with every row stored once.
"""

import datetime
import multiprocessing
import os
import shutil
import subprocess
import sys
import time

import alembic.autogenerate
import alembic.command
import alembic.config
import alembic.migration
import numpy as np
import pytest
import sqlalchemy

from benchmarks import encoding, finetune, reports, results, runner, submissions, tasks
from benchmarks.builtin_suite import write_builtin_suite

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One optimizer step per run: 8 training examples in one batch of 8.
CONFIG = finetune.FineTuneConfig(learning_rate=1e-3, epochs=1, batch_size=8, sequence_length=16,
                                 max_train_examples=8, max_eval_examples=6)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    return write_builtin_suite(str(tmp_path_factory.mktemp("suite")), train_size=16, dev_size=8, test_size=6)


@pytest.fixture(scope="module")
def tiny(suite, tmp_path_factory):
    texts = [text for pair in tasks.read_split(suite, "SST-2", "train").texts for text in pair]
    return submissions.make_baseline_submission(
        str(tmp_path_factory.mktemp("submission") / "tiny"), texts, name="bert-tiny", vocabulary_size=200,
        num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=16)


def run_tasks(database, glue_dir, task_names, submission, cache_dir):
    runner.BenchmarkRunner(database, glue_dir, task_names, [0], CONFIG, cache_dir, progress=False).run([submission])


@pytest.mark.parametrize("split", [pytest.param("dev", marks=pytest.mark.long), "train"])  # dev: make test-long
def test_missing_split_is_a_failure_row_then_runs_once_restored(suite, tiny, tmp_path, split):
    glue = shutil.copytree(suite, tmp_path / "glue")
    missing = glue / "SST-2" / f"{split}.tsv"
    kept = missing.read_bytes()
    missing.unlink()
    database = results.ResultsDatabase(str(tmp_path / "results.db"))
    run_tasks(database, str(glue), ["SST-2", "STS-B"], tiny, str(tmp_path / "cache"))

    assert sorted(run.task for run in database.runs()) == ["STS-B"]  # the other task goes on
    (failure,) = database.failures()
    assert failure.task == "SST-2" and failure.submission_name == "bert-tiny"
    assert f"SST-2 {split} file not found: {missing}" in failure.error and "--glue-dir" in failure.error
    row = reports.leaderboard(database).iloc[-1]
    assert row["Submission"] == "bert-tiny" and str(missing) in row["Error"]

    missing.write_bytes(kept)  # restored: the run happens and the failure row goes
    run_tasks(database, str(glue), ["SST-2", "STS-B"], tiny, str(tmp_path / "cache"))
    runs = {run.task: run for run in database.runs()}
    assert sorted(runs) == ["SST-2", "STS-B"] and database.failures() == []
    assert runs["SST-2"].metrics.keys() == {"accuracy"}


def test_changed_data_is_run_again(suite, tiny, tmp_path):
    glue = shutil.copytree(suite, tmp_path / "glue")
    database = results.ResultsDatabase(str(tmp_path / "results.db"))
    run_tasks(database, str(glue), ["SST-2"], tiny, str(tmp_path / "cache"))
    run_tasks(database, str(glue), ["SST-2"], tiny, str(tmp_path / "cache"))
    (first,) = database.runs()  # same data: skipped

    dev = glue / "SST-2" / "dev.tsv"
    header, first_line, *rest = dev.read_text().splitlines(keepends=True)
    sentence, label = first_line.rstrip("\n").split("\t")
    dev.write_text("".join([header, f"{sentence}\t{1 - int(label)}\n", *rest]))  # one label corrected
    run_tasks(database, str(glue), ["SST-2"], tiny, str(tmp_path / "cache"))
    runs = database.runs()
    assert len(runs) == 2 and runs[1].data_hash != first.data_hash
    assert database.predictions(runs[1].id, "dev")[0].label == 1 - int(label)
    # The leaderboard reports the run on the current data.
    assert set(reports.scores_frame(database)["run_id"]) == {runs[1].id}


def database_at_revision_0001_with_a_run(url):
    """A results database as revision 0001 left it, with one stored run (no data digest yet)."""
    engine = sqlalchemy.create_engine(url)
    config = alembic.config.Config()
    config.set_main_option("script_location", results.MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic.command.upgrade(config, "0001")
        connection.execute(sqlalchemy.text(
            "INSERT INTO runs (submission_hash, submission_name, task, seed, config_hash, config, metadata_json, "
            "metrics, train_examples, wall_seconds, train_sequences_per_second, train_tokens_per_second, hardware, "
            "versions, finished_at) VALUES ('h', 'model-a', 'SST-2', 0, 'c', '{}', '{}', '{\"accuracy\": 90.0}', "
            "8, 1, 1, 1, 'cpu', '{}', '2026-11-23 00:00:00')"))
    engine.dispose()


def check_upgraded_from_0001(database):
    """The old run is kept with an empty data digest, and the new key lets it be run again on the current data."""
    (old,) = database.runs()
    assert (old.task, old.data_hash, old.metrics) == ("SST-2", "", {"accuracy": 90.0})

    def same_key_on(data_hash):
        return results.Run(submission_hash="h", submission_name="model-a", task="SST-2", seed=0, config_hash="c",
                           config={}, data_hash=data_hash, metadata_json={}, metrics={"accuracy": 91.0},
                           train_examples=8, wall_seconds=1.0, train_sequences_per_second=1.0,
                           train_tokens_per_second=1.0, hardware="cpu", versions={},
                           finished_at=datetime.datetime.now(datetime.UTC))

    assert database.add_runs([same_key_on("0123456789abcdef")])  # other data: a run of its own
    assert not database.add_runs([same_key_on("0123456789abcdef")])  # the same data: stored once
    assert len(database.runs()) == 2
    with database.engine.connect() as connection:
        assert alembic.autogenerate.compare_metadata(
            alembic.migration.MigrationContext.configure(connection), results.Base.metadata) == []


def test_upgrade_from_revision_0001_keeps_the_runs(tmp_path):
    path = tmp_path / "old.db"
    database_at_revision_0001_with_a_run(f"sqlite:///{path}")
    check_upgraded_from_0001(results.ResultsDatabase(str(path)))


def open_database(path, barrier, outcomes):
    barrier.wait()
    try:
        results.ResultsDatabase(path)
        outcomes.put("ok")
    except Exception as error:  # noqa: BLE001 - reported to the test
        outcomes.put(f"{type(error).__name__}: {error}"[:300])


def open_at_once(location):
    """Two processes open the results database at `location` at the same moment; their outcomes."""
    context = multiprocessing.get_context("spawn")
    barrier, outcomes = context.Barrier(2), context.Queue()
    drivers = [context.Process(target=open_database, args=(location, barrier, outcomes)) for _ in range(2)]
    for driver in drivers:
        driver.start()
    for driver in drivers:
        driver.join(120)
    return [outcomes.get(timeout=10), outcomes.get(timeout=10)]


@pytest.mark.long  # racing driver processes, several rounds: `make test-long`
def test_two_drivers_create_one_new_sqlite_file_at_once(tmp_path):
    for attempt in range(4):  # the race is hit most times; four rounds make a miss unlikely
        path = str(tmp_path / f"results{attempt}.db")
        assert open_at_once(path) == ["ok", "ok"]
        assert results.ResultsDatabase(path).runs() == []


def fill_cache(vocabulary, glue_dir, cache_dir, barrier, outcomes):
    examples = tasks.read_split(glue_dir, "SST-2", "train")
    digest = tasks.data_digest(glue_dir, tasks.get_task("SST-2"), "train")
    pair_encoder = encoding.PairEncoder(vocabulary, True, 16)
    pair_encoder.encoder()  # TensorFlow and the tokenizer loaded before the start line
    save = np.savez_compressed

    def slow_disk(*args, **kwargs):  # a slow file system: the other driver writes meanwhile
        save(*args, **kwargs)
        time.sleep(2)

    np.savez_compressed = slow_disk
    barrier.wait()
    try:
        arrays = encoding.cached_encode(pair_encoder, "SST-2", examples, digest, cache_dir, "SST-2-train")
        outcomes.put(arrays["token_ids"].tolist())
    except Exception as error:  # noqa: BLE001
        outcomes.put(f"{type(error).__name__}: {error}"[:300])


@pytest.mark.long  # racing driver processes, several rounds: `make test-long`
def test_two_drivers_fill_one_new_token_cache_at_once(suite, tiny, tmp_path):
    context = multiprocessing.get_context("spawn")
    vocabulary = os.path.join(tiny, "vocab.txt")
    for attempt in range(2):
        cache_dir = str(tmp_path / f"cache{attempt}")
        barrier, outcomes = context.Barrier(2), context.Queue()
        drivers = [context.Process(target=fill_cache, args=(vocabulary, suite, cache_dir, barrier, outcomes))
                   for _ in range(2)]
        for driver in drivers:
            driver.start()
        got = [outcomes.get(timeout=300), outcomes.get(timeout=300)]
        for driver in drivers:
            driver.join(60)
        assert all(isinstance(arrays, list) for arrays in got), got
        assert got[0] == got[1]
        assert [name for name in os.listdir(cache_dir) if name.endswith(".npz")] and \
            not [name for name in os.listdir(cache_dir) if "partial" in name]


@pytest.mark.long  # racing driver processes, several rounds: `make test-long`
def test_two_benchmark_runs_started_together_store_every_row_once(suite, tiny, tmp_path):
    database, cache = tmp_path / "new" / "results.db", tmp_path / "new-cache"
    command = [sys.executable, "-m", "benchmarks", "run", tiny, "--glue-dir", suite, "--tasks", "SST-2", "STS-B",
               "--seeds", "0", "1", "--epochs", "1", "--batch-size", "8", "--sequence-length", "16",
               "--learning-rates", "1e-3", "--max-train-examples", "8", "--max-eval-examples", "6",
               "--db", str(database), "--cache-dir", str(cache), "--no-progress"]
    environment = dict(os.environ, PYTHONPATH=ROOT)
    drivers = [subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outputs = [driver.communicate(timeout=600)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], outputs
    stored = results.ResultsDatabase(str(database))
    assert stored.failures() == [], outputs
    keys = sorted((run.task, run.seed) for run in stored.runs())
    assert keys == [("SST-2", 0), ("SST-2", 1), ("STS-B", 0), ("STS-B", 1)]
    for run in stored.runs():
        assert len(stored.predictions(run.id, "dev")) == 6 and run.metrics
    assert not [name for name in os.listdir(cache) if "partial" in name]
