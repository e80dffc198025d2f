"""Killing `python -m grader autograde` at any moment and re-running gives the same grades.

One course is graded without interruption; a copy of it is graded by a grader
that is SIGKILLed (its whole process group) very early, then again just after
the first result file appears, and finally re-run to completion. The copy
must end with the same gradebook rows and result files, one submission per
student, and nothing of the killed runs left running.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from grader import course, submission
from tests.grading_state import (ASSIGNMENT, collected_course, gradebook_state, process_tree, read_stat,
                                 result_files, results_state)

# Long (`make test-long`, not `make test`): a class graded, the grader killed
# mid-notebook, then resumed.
pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released course with four collected submissions (three run a kernel, one is unreadable)."""
    root = tmp_path_factory.mktemp("resume")
    path = collected_course(str(root / "template"), str(root / "inbox"))
    (root / "broken" / "broken").mkdir(parents=True)
    (root / "broken" / "broken" / "attention.ipynb").write_text('{"cells": [ not json')
    course.collect(path, ASSIGNMENT, str(root / "broken"))
    return root, path


def course_copy(root, template, name):
    path = str(root / name)
    shutil.copytree(template, path)
    course.setup(path, assignments=[ASSIGNMENT])  # nbgrader_config.py names the copy as its root
    return path


def start_grader(path):
    return subprocess.Popen([sys.executable, "-m", "grader", "autograde", path, ASSIGNMENT, "--workers", "2"],
                            cwd=course.REPO, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run_grader(path):
    grader = start_grader(path)
    out, err = grader.communicate(timeout=600)
    assert grader.returncode == 0, err[-3000:]
    return err


def still_running(tree):
    return [pid for pid, started in tree.items()
            if (stat := read_stat(pid)) and stat[19] == started and stat[0] not in "ZX"]


def mentioning(path):
    """Live processes whose command line names `path` (the sandbox binds the release folder)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if entry.isdigit() and path in cmdline and (read_stat(int(entry)) or "Z")[0] not in "ZX":
            found.append((entry, cmdline.replace("\0", " ")[:200]))
    return found


def kill_when(path, ready, timeout=300):
    """Start the grader, SIGKILL its process group once `ready(pids of the grader and its processes)`;
    nothing of it may survive.

    Returns the pids of the killed grader and its processes.
    """
    grader = start_grader(path)
    deadline = time.monotonic() + timeout
    while not ready(process_tree(grader.pid)) and grader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert grader.poll() is None, "the grader finished before it could be killed"
    tree = process_tree(grader.pid)
    os.killpg(grader.pid, signal.SIGKILL)
    grader.communicate()
    deadline = time.monotonic() + 15
    while (still_running(tree) or mentioning(path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert still_running(tree) == [] and mentioning(path) == []
    return list(tree)


def test_killed_and_resumed_grading_matches_an_uninterrupted_run(released):
    root, template = released
    uninterrupted = course_copy(root, template, "uninterrupted")
    stderr = run_grader(uninterrupted)
    # nbgrader's SQLAlchemy "not in session" warnings are silenced; nothing else is.
    assert "SAWarning" not in stderr and "not in session" not in stderr

    resumed = course_copy(root, template, "resumed")
    started = time.monotonic()
    first = kill_when(resumed, lambda _: time.monotonic() - started > 2)  # still starting up
    assert result_files(resumed) == []
    # The unreadable notebook is judged at once; the second result comes from a kernel.
    # Killed mid-notebook: a worker's run folder exists (between two notebooks there is none).
    second = kill_when(resumed, lambda pids: len(result_files(resumed)) >= 2 and run_dirs(pids))
    assert len(second) > 3  # killed with workers and sandboxed kernels running
    assert 2 <= len(result_files(resumed)) < 4
    assert run_dirs(second)  # the workers' kernel sockets and captures, left behind by SIGKILL
    run_grader(resumed)
    assert run_dirs(first + second) == []  # swept by the re-run

    assert results_state(resumed) == results_state(uninterrupted)
    assert len(results_state(resumed)) == 4
    expected = gradebook_state(uninterrupted, ASSIGNMENT)
    assert gradebook_state(resumed, ASSIGNMENT) == expected
    assert sorted(expected) == ["broken", "correct", "off_by_one", "stub"]
    assert all(student["submission_rows"] == 1 for student in expected.values())
    # The 12 autograded points; the written answer waits for manual grading (no score yet).
    assert sum(score for _, _, score in expected["correct"]["grades"] if score is not None) == 12
    assert files_under(resumed, "autograded") == files_under(uninterrupted, "autograded")


def run_dirs(pids):
    """The temporary directories of the grading processes with these pids."""
    prefixes = tuple(f"{submission.RUN_DIR_PREFIX}{pid}-" for pid in pids)
    return [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(prefixes)]


def files_under(path, folder):
    """Relative paths of every file under path/folder (a leftover temporary file would show)."""
    top = os.path.join(path, folder)
    return sorted(os.path.relpath(os.path.join(d, n), top) for d, _, names in os.walk(top) for n in names)
