"""Grading and benchmarking through Ray and PostgreSQL give what the local, SQLite paths give.

The real things run on loopback: a PostgreSQL server from Debian's packages
(`make system-deps`) and a Ray cluster of a head node and a second worker
node (separate raylet processes, `ray.cluster_utils.Cluster`). In each test
the worker node is killed while it runs a job; Ray re-runs that job on the
head, and the results must still be complete and identical.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import numpy as np
import pytest

from grader import course
from tests.grading_state import ASSIGNMENT, collected_course, gradebook_state, process_tree, results_state

# Long (`make test-long`, not `make test`): a Ray cluster and a PostgreSQL server started,
# a class and a benchmark run through them.
pytestmark = pytest.mark.long


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server on 127.0.0.1; yields a function making a database's URL."""
    initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdb:
        pytest.fail("PostgreSQL is not installed; run `make system-deps` (Debian's postgresql package)")
    bin_dir = os.path.dirname(initdb[-1])
    data = tempfile.mkdtemp(prefix="kit-postgres-")
    # PostgreSQL refuses to run as root; Debian's package brings a `postgres` user.
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_server:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()

    def server(*command):
        subprocess.run(as_server + [os.path.join(bin_dir, command[0]), *command[1:]], check=True,
                       capture_output=True, text=True)

    server("initdb", "-D", f"{data}/db", "-A", "trust", "-U", "kit", "--no-sync")
    server("pg_ctl", "-D", f"{data}/db", "-w", "-l", f"{data}/log", "-o",
           f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def database(name):
        server("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "kit", name)
        return f"postgresql://kit@127.0.0.1:{port}/{name}"

    yield database
    server("pg_ctl", "-D", f"{data}/db", "-m", "immediate", "stop")
    shutil.rmtree(data, ignore_errors=True)


NODE = dict(num_cpus=1, object_store_memory=150 * 2**20)


@pytest.fixture(scope="module")
def ray_head():
    """A Ray cluster's head node (one CPU)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def ray_cluster(ray_head):
    """The head plus a fresh worker node (one CPU); yields (cluster, worker node)."""
    worker = ray_head.add_node(**NODE)
    ray_head.wait_for_nodes()
    yield ray_head, worker
    if worker in ray_head.worker_nodes:
        ray_head.remove_node(worker, allow_graceful=False)


def kill_node_when_busy(cluster, node, task_name, timeout=600):
    """In the background: kill `node` (SIGKILL, no clean-up) once one of its workers runs `task_name`.

    Ray names a worker process `ray::<task>` while it runs a task. Returns a
    list that gets True once the node was killed mid-task.
    """
    killed = []
    raylet = node.all_processes["raylet"][0].process.pid

    def busy():
        for pid in process_tree(raylet):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().startswith(f"ray::{task_name}".encode()):
                        return True
            except OSError:
                continue
        return False

    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if busy():
                time.sleep(1.0)  # well inside the job: a kernel or a training loop is running
                cluster.remove_node(node, allow_graceful=False)
                killed.append(True)
                return
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()
    return killed


def test_grading_through_ray_and_postgresql_matches_local_grading(tmp_path, postgres, ray_cluster):
    cluster, worker = ray_cluster
    local = collected_course(str(tmp_path / "local"), str(tmp_path / "local-inbox"))
    course.autograde(local, ASSIGNMENT, workers=2, progress=False)

    distributed = collected_course(str(tmp_path / "distributed"), str(tmp_path / "distributed-inbox"),
                                   gradebook_url=postgres("gradebook"))
    assert course.db_url(distributed).startswith("postgresql://")
    killed = kill_node_when_busy(cluster, worker, "execute_submission")
    course.autograde(distributed, ASSIGNMENT, progress=False, executor="ray", ray_address=cluster.address)

    assert killed == [True]  # the worker node died while grading a notebook
    expected = results_state(local)
    assert sorted(r["student"] for r in expected.values()) == ["correct", "off_by_one", "stub"]
    assert results_state(distributed) == expected
    assert gradebook_state(distributed, ASSIGNMENT) == gradebook_state(local, ASSIGNMENT)
    # nbgrader's own commands read the same PostgreSQL gradebook.
    csv_path = course.export(distributed, ASSIGNMENT)
    with open(csv_path) as f:
        rows = f.read()
    assert "correct" in rows and "off_by_one" in rows


def benchmark_runs(database):
    """{(task, seed): (metrics, dev and test predictions)} of every stored run."""
    return {(run.task, run.seed): (run.metrics,
                                   [(p.split, p.example_index, p.prediction, p.label)
                                    for split in ("dev", "test") for p in database.predictions(run.id, split)])
            for run in database.runs()}


def test_benchmark_through_ray_and_postgresql_matches_the_local_run(tmp_path, postgres, ray_cluster):
    from benchmarks import __main__ as cli
    from benchmarks import results, submissions
    from benchmarks.builtin_suite import write_builtin_suite

    cluster, worker = ray_cluster
    glue = str(tmp_path / "glue")
    write_builtin_suite(glue, 48, 24, 16)
    submission = submissions.make_baseline_submission(
        str(tmp_path / "tiny"), [line for line in open(f"{glue}/SST-2/train.tsv")], name="bert-tiny",
        vocabulary_size=300, num_layers=1, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    arguments = ["run", submission, "--glue-dir", glue, "--tasks", "SST-2", "STS-B", "--seeds", "0", "1",
                 "--epochs", "2", "--batch-size", "8", "--sequence-length", "32", "--learning-rates", "1e-3",
                 "--cache-dir", str(tmp_path / "tokenized"), "--no-progress"]
    cli.main(arguments + ["--db", str(tmp_path / "local.db")])

    url = postgres("results")
    killed = kill_node_when_busy(cluster, worker, "fine_tune_job")
    cli.main(arguments + ["--db", url, "--executor", "ray", "--ray-address", cluster.address])

    assert killed == [True]  # the worker node died while fine-tuning
    local, distributed = results.ResultsDatabase(str(tmp_path / "local.db")), results.ResultsDatabase(url)
    assert distributed.failures() == []
    expected = benchmark_runs(local)
    assert sorted(expected) == [("SST-2", 0), ("SST-2", 1), ("STS-B", 0), ("STS-B", 1)]
    got = benchmark_runs(distributed)
    assert sorted(got) == sorted(expected)
    for key, (metrics, predictions) in expected.items():
        np.testing.assert_allclose([p[2] for p in got[key][1]], [p[2] for p in predictions], rtol=1e-5, atol=1e-6)
        assert [p[:2] + p[3:] for p in got[key][1]] == [p[:2] + p[3:] for p in predictions]
        assert got[key][0].keys() == metrics.keys()
        np.testing.assert_allclose(list(got[key][0].values()), list(metrics.values()), rtol=1e-5, atol=1e-6)
    # Re-running against PostgreSQL finds every run done: nothing is added.
    cli.main(arguments + ["--db", url, "--executor", "ray", "--ray-address", cluster.address])
    assert len(results.ResultsDatabase(url).runs()) == 4


def test_results_database_on_postgresql_upgrades_from_0001_and_opens_from_two_drivers_at_once(postgres):
    from benchmarks import results
    from tests.test_benchmarks_faults import check_upgraded_from_0001, database_at_revision_0001_with_a_run, open_at_once

    old = postgres("results_0001")
    database_at_revision_0001_with_a_run(old)
    check_upgraded_from_0001(results.ResultsDatabase(old))
    for attempt in range(3):
        new = postgres(f"results_new_{attempt}")
        assert open_at_once(new) == ["ok", "ok"]
        assert results.ResultsDatabase(new).runs() == []
