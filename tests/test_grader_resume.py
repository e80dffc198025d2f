"""Killing `python -m grader autograde` at any moment and re-running gives the same grades.

One course is graded without interruption; a copy of it is graded by a grader
that is SIGKILLed (its whole process group) very early, then again just after
the first result file appears, and finally re-run to completion. The copy
must end with the same gradebook rows and result files, one submission per
student, and nothing of the killed runs left running.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import nbformat
import pytest
from nbgrader.api import SubmittedAssignment

from course_demo.sample_students import CAUSAL_OFF_BY_ONE, HEADS, SDPA, student_notebook, write_inbox
from grader import course, submission

ASSIGNMENT = "attention"


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released course with four collected submissions (three run a kernel, one is unreadable)."""
    root = tmp_path_factory.mktemp("resume")
    path = course.setup(str(root / "template"), assignments=[ASSIGNMENT])
    release_dir = course.release(path, ASSIGNMENT)
    release_nb = nbformat.read(os.path.join(release_dir, "attention.ipynb"), as_version=4)
    source_nb = nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"), as_version=4)
    write_inbox({"correct": source_nb, "stub": release_nb,
                 "off_by_one": student_notebook(release_nb, {"sdpa": SDPA, "causal": CAUSAL_OFF_BY_ONE,
                                                             "heads": HEADS})}, str(root / "inbox"))
    (root / "inbox" / "broken").mkdir()
    (root / "inbox" / "broken" / "attention.ipynb").write_text('{"cells": [ not json')
    course.collect(path, ASSIGNMENT, str(root / "inbox"))
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


def result_files(path):
    return sorted(os.path.join(dirpath, name) for dirpath, _, names in os.walk(os.path.join(path, "autograded"))
                  for name in names if name == submission.RESULT_FILE)


def process_tree(root_pid):
    """{pid: start time} of `root_pid` and everything below it, read from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat:
                children.setdefault(int(stat[1]), []).append(int(entry))
    tree, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        stat = read_stat(pid)
        if stat:
            tree[pid] = stat[19]
            todo += children.get(pid, [])
    return tree


def read_stat(pid):
    """/proc/<pid>/stat fields after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


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
    """Start the grader, SIGKILL its process group once `ready()`; nothing of it may survive.

    Returns the killed grader's pid and how many processes it had.
    """
    grader = start_grader(path)
    deadline = time.monotonic() + timeout
    while not ready() and grader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert grader.poll() is None, "the grader finished before it could be killed"
    tree = process_tree(grader.pid)
    os.killpg(grader.pid, signal.SIGKILL)
    grader.communicate()
    deadline = time.monotonic() + 15
    while (still_running(tree) or mentioning(path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert still_running(tree) == [] and mentioning(path) == []
    return grader.pid, len(tree)


def gradebook_state(path):
    """Every student's submission rows and per-cell auto scores, from nbgrader's Gradebook."""
    state = {}
    with course.gradebook(path) as gb:
        for student in gb.students:
            rows = gb.db.query(SubmittedAssignment).filter(SubmittedAssignment.student == student).all()
            notebooks = gb.find_submission(ASSIGNMENT, student.id).notebooks
            state[student.id] = {
                "submission_rows": len(rows),
                "grades": sorted((nb.name, g.name, g.auto_score) for nb in notebooks for g in nb.grades)}
    return state


def results_state(path):
    """The result files, without the wall-clock seconds (the only part that may differ)."""
    state = {}
    for file in result_files(path):
        with open(file) as f:
            result = json.load(f)
        for notebook in result["notebooks"].values():
            notebook.pop("seconds")
        state[os.path.relpath(file, path)] = result
    return state


def test_killed_and_resumed_grading_matches_an_uninterrupted_run(released):
    root, template = released
    uninterrupted = course_copy(root, template, "uninterrupted")
    stderr = run_grader(uninterrupted)
    # nbgrader's SQLAlchemy "not in session" warnings are silenced; nothing else is.
    assert "SAWarning" not in stderr and "not in session" not in stderr

    resumed = course_copy(root, template, "resumed")
    started = time.monotonic()
    first, _ = kill_when(resumed, lambda: time.monotonic() - started > 2)  # still starting up
    assert result_files(resumed) == []
    # The unreadable notebook is judged at once; the second result comes from a kernel.
    second, processes = kill_when(resumed, lambda: len(result_files(resumed)) >= 2)
    assert processes > 3  # killed with workers and sandboxed kernels running
    assert 2 <= len(result_files(resumed)) < 4
    assert run_dirs(second)  # its kernel sockets and captures, left behind by SIGKILL
    run_grader(resumed)
    assert run_dirs(first) == run_dirs(second) == []  # swept by the re-run

    assert results_state(resumed) == results_state(uninterrupted)
    assert len(results_state(resumed)) == 4
    expected = gradebook_state(uninterrupted)
    assert gradebook_state(resumed) == expected
    assert sorted(expected) == ["broken", "correct", "off_by_one", "stub"]
    assert all(student["submission_rows"] == 1 for student in expected.values())
    assert sum(score for _, _, score in expected["correct"]["grades"]) == 9
    assert files_under(resumed, "autograded") == files_under(uninterrupted, "autograded")


def run_dirs(grader_pid):
    """The temporary directories of the grader with this pid."""
    prefix = f"{course.RUN_DIR_PREFIX}{grader_pid}-"
    return [name for name in os.listdir(tempfile.gettempdir()) if name.startswith(prefix)]


def files_under(path, folder):
    """Relative paths of every file under path/folder (a leftover temporary file would show)."""
    top = os.path.join(path, folder)
    return sorted(os.path.relpath(os.path.join(d, n), top) for d, _, names in os.walk(top) for n in names)
