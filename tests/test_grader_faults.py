"""Faults and attacks aimed at the grader itself (issue 20): a student or a bad file
must never stop or strain the grading of others, and no failure may pass silently.

Hostile captures and metadata are checked in this process (fast); one course is then
graded end to end with the crashing submissions among honest ones.
"""

import csv
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile

import nbformat
import numpy as np
import pytest
from nbgrader.api import Gradebook, MissingEntry

from grader import course, sandbox, verdicts
from grader.__main__ import main
from grader.assignments import CASES
from grader.runtime import grading_runtime
from grader.submission import restore_trusted_cells

SEED = 4242
CASE = "attention.split_heads"


def honest_capture(path):
    np.savez(path, **grading_runtime.call_case(CASE, CASES[CASE].reference, SEED))


def measured(function, *args):
    """(what `function` returned or raised, CPU seconds, peak bytes allocated by Python and numpy)."""
    tracemalloc.start()
    started = time.process_time()
    try:
        outcome = function(*args)
    except Exception as error:  # noqa: BLE001 - the caller checks it
        outcome = error
    seconds = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, seconds, peak


# --- Hostile captures, judged in the grader's own process -----------------------------


def test_a_raw_member_in_an_npz_is_a_wrong_answer_not_a_crash(tmp_path):
    with zipfile.ZipFile(tmp_path / f"{CASE}.npz", "w") as archive:
        archive.writestr("call0_output0", b"not an array")  # np.load hands this back as bytes
    verdict = verdicts.judge_case(CASE, str(tmp_path), SEED)
    assert not verdict.passed and "is not an array (.npy)" in verdict.message


def test_hundreds_of_thousands_of_tiny_members_cost_almost_nothing(tmp_path):
    path = tmp_path / f"{CASE}.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(400_000):
            archive.writestr(f"m{i}.npy", b"")
    assert path.stat().st_size < sandbox.MAX_CAPTURE_BYTES  # it passes the file size check
    outcome, seconds, peak = measured(verdicts.load_capture, str(path))
    assert isinstance(outcome, ValueError) and "more than 64 arrays" in str(outcome)
    # The member count is read from the zip's end record, before the directory is parsed
    # (parsing it took 20 s of CPU and 170 MB per capture).
    assert seconds < 0.5 and peak < 2**20, (seconds, peak)


def declared_size_patched(path, size):
    """Rewrite the uncompressed size the zip's central directory declares for every member."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        struct.pack_into("<L", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def test_huge_declared_sizes_are_refused_before_anything_is_allocated(tmp_path):
    path = tmp_path / f"{CASE}.npz"
    honest_capture(path)
    declared_size_patched(path, 2**32 - 2)
    outcome, _, peak = measured(verdicts.load_capture, str(path))
    assert isinstance(outcome, ValueError) and "larger than 64 MiB" in str(outcome)
    # An .npy header promising 2**30 float32 (4 GiB) over 16 bytes of data.
    header = {"descr": "<f4", "fortran_order": False, "shape": (2**30,)}
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("call0_output0.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 16)
    outcome, _, peak = measured(verdicts.load_capture, str(path))
    assert isinstance(outcome, ValueError) and "declares a shape its data does not fill" in str(outcome)
    assert peak < 2**20, peak


def test_object_structured_and_string_arrays_are_refused(tmp_path):
    for value in (np.array(["text"]), np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])):
        np.savez(tmp_path / f"{CASE}.npz", call0_output0=value)
        assert "not plain numbers" in verdicts.judge_case(CASE, str(tmp_path), SEED).message


def test_an_honest_capture_still_loads_exactly(tmp_path):
    honest_capture(tmp_path / f"{CASE}.npz")
    expected = grading_runtime.call_case(CASE, CASES[CASE].reference, SEED)
    loaded = verdicts.load_capture(str(tmp_path / f"{CASE}.npz"))
    assert loaded.keys() == expected.keys()
    assert all(np.array_equal(loaded[k], expected[k]) and loaded[k].dtype == expected[k].dtype for k in expected)
    assert verdicts.judge_case(CASE, str(tmp_path), SEED).passed


# --- Notebook metadata ------------------------------------------------------------------

TRUSTED = [{"name": "test", "source": "capture('attention.split_heads', f)", "cell_type": "code",
            "nbgrader": {"grade": True, "grade_id": "test", "locked": True, "points": 1, "solution": False}}]


@pytest.mark.parametrize("metadata, field", [
    ({"grade_id": ["test"], "locked": True}, "grade_id"),       # unhashable: crashed the run
    (None, "the whole entry"),                                  # crashed the run
    ({"grade_id": "test", "grade": True, "points": "100"}, "points"),
    ({"grade_id": "x", "locked": "yes"}, "locked"),
])
def test_malformed_nbgrader_metadata_is_removed_and_said(metadata, field):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("f = lambda x, num_heads: x", metadata={"nbgrader": metadata}),
        nbformat.v4.new_code_cell(TRUSTED[0]["source"], metadata={"nbgrader": dict(TRUSTED[0]["nbgrader"])})])
    problems = restore_trusted_cells(nb, TRUSTED)
    assert len(problems) == 1 and "cell 0's nbgrader metadata is malformed" in problems[0]
    assert f"({field}:" in problems[0]
    assert "nbgrader" not in nb.cells[0].metadata
    assert [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells] == [None, "test"]


# --- A class graded end to end with crashing submissions among honest ones ------------

RAW_MEMBER_CAPTURE = """import os, zipfile
with zipfile.ZipFile(os.environ["GRADER_CAPTURE_DIR"] + "/attention.causal_mask.npz", "w") as z:
    z.writestr("call0_output0", b"raw bytes, not an array")"""


def with_cell(nb, source, metadata=None):
    nb = nbformat.from_dict(nb)
    nb.cells.append(nbformat.v4.new_code_cell(source, metadata=metadata or {}))
    return nb


@pytest.fixture(scope="module")
def faulty_class(tmp_path_factory):
    """A course whose class holds the submissions that crashed `autograde` on main."""
    root = tmp_path_factory.mktemp("faults")
    path = course.setup(str(root / "course"), assignments=["attention"])
    course.generate(path, "attention")
    correct = nbformat.read(os.path.join(path, "source", "attention", "attention.ipynb"), as_version=4)
    inbox = root / "inbox"
    submissions = {
        "correct": correct,
        "raw_capture": with_cell(correct, RAW_MEMBER_CAPTURE),
        "list_grade_id": with_cell(correct, "x = 1", {"nbgrader": {"grade_id": ["sdpa"], "locked": True}}),
        "null_metadata": with_cell(correct, "x = 1", {"nbgrader": None}),
        "blocked": correct,  # the grader cannot write this student's results (a host fault)
    }
    for student, nb in submissions.items():
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, str(inbox / student / "attention.ipynb"))
    course.collect(path, "attention", str(inbox))
    os.makedirs(os.path.join(path, "autograded"))
    with open(os.path.join(path, "autograded", "blocked"), "w") as f:
        f.write("a file where the student's folder should be")
    with pytest.raises(SystemExit) as exit:
        main(["autograde", path, "attention", "--workers", "2"])
    return root, path, str(exit.value)


def scores(path):
    with Gradebook(course.db_url(path)) as gb:
        found = {}
        for student in gb.students:
            try:
                found[student.id] = gb.find_submission("attention", student.id).score
            except MissingEntry:
                pass
        return found


def test_crashing_submissions_are_graded_with_the_rest_of_the_class(faulty_class):
    _, path, _ = faulty_class
    graded = scores(path)
    assert graded["correct"] == graded["list_grade_id"] == graded["null_metadata"] == 9
    assert graded["raw_capture"] == 7  # everything but the causal mask case (2 points) it overwrote
    results = {r["student"]: r for r in course.load_results(path, "attention")}
    problems = results["list_grade_id"]["notebooks"]["attention"]["problems"]
    assert any("nbgrader metadata is malformed (grade_id:" in p for p in problems)
    causal = results["raw_capture"]["notebooks"]["attention"]["cells"][2]
    assert "is not an array (.npy)" in causal["cases"][0]["message"]


def test_a_submission_the_grader_cannot_finish_exits_non_zero_naming_it_and_records_nothing(
        faulty_class, monkeypatch):
    root, path, message = faulty_class
    assert "1 of 5 submissions were not graded" in message
    assert "blocked: judging failed" in message
    assert "NotADirectoryError" in message or "FileExistsError" in message
    assert "blocked" not in scores(path)  # no silent zero
    # export refuses rather than write the ungraded student as zero
    with pytest.raises(SystemExit) as exit:
        main(["export", path, "attention"])
    assert "not graded yet (blocked)" in str(exit.value)
    # The fault fixed, the next run grades only that student and exits 0; export
    # then works with the course given as a relative path.
    os.remove(os.path.join(path, "autograded", "blocked"))
    main(["autograde", path, "attention", "--workers", "1"])
    assert scores(path)["blocked"] == 9
    monkeypatch.chdir(root)
    main(["export", "course", "attention"])
    with open(os.path.join(path, "exports", "grades.csv")) as f:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == {"correct": 9, "raw_capture": 7, "list_grade_id": 9, "null_metadata": 9, "blocked": 9}
    assert os.path.isfile(os.path.join(path, "exports", "gradescope", "raw_capture", "results.json"))


def test_a_copied_course_writes_only_to_its_own_gradebook(faulty_class):
    root, path, _ = faulty_class
    copy = str(root / "copy")
    shutil.copytree(path, copy)
    assert course.db_url(copy) == "sqlite:///" + os.path.join(copy, "gradebook.db")
    (root / "late" / "newcomer").mkdir(parents=True)
    shutil.copy(os.path.join(path, "submitted", "correct", "attention", "attention.ipynb"),
                root / "late" / "newcomer")
    course.collect(copy, "attention", str(root / "late"))
    with Gradebook(course.db_url(copy)) as gb:
        assert "newcomer" in {s.id for s in gb.students}
    with Gradebook(course.db_url(path)) as gb:
        assert "newcomer" not in {s.id for s in gb.students}


def test_a_run_that_grades_nobody_exits_non_zero(faulty_class):
    root, path, _ = faulty_class
    empty = str(root / "empty")
    shutil.copytree(path, empty, ignore=shutil.ignore_patterns("submitted", "autograded"))
    with pytest.raises(SystemExit) as exit:
        main(["autograde", empty, "attention"])
    assert "no submissions of attention" in str(exit.value)
    with pytest.raises(SystemExit) as exit:
        main(["autograde", empty, "no_such_assignment"])
    assert "generate it first" in str(exit.value)


# --- A non-root grader on a host where root graded before ------------------------------

UNPRIVILEGED_UID = 64_999  # a throwaway uid with no account


def run_as(uid, home, *args):
    env = {"PATH": os.environ["PATH"], "HOME": home, "PYTHONPATH": course.REPO,
           "GRADER_SANDBOX_UID_BASE": str(sandbox.SANDBOX_UID_BASE), "TF_CPP_MIN_LOG_LEVEL": "2",
           "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-m", "grader",
               *args]
    return subprocess.run(with_python_reachable(command), cwd=home, env=env, capture_output=True, text=True,
                          timeout=600)


def with_python_reachable(command):
    """`command`, in a private mount namespace where this interpreter is reachable by any user
    when it is installed under a private folder (a pyenv under /root, mode 0700), as it would be
    for a non-root grader on a real host; the host's folders are not changed."""
    executable = os.path.realpath(sys.executable)
    parts = executable.split("/")
    private = next(("/".join(parts[:i]) for i in range(2, len(parts))
                    if not os.stat("/".join(parts[:i])).st_mode & 0o001), None)
    if private is None:
        return command
    needed = "/".join(parts[:private.count("/") + 2])  # the private folder's child on the way
    script = ('keep=$(mktemp -d) && mount --bind "$1" "$keep" && mount -t tmpfs -o mode=755 none "$2" && '
              'mkdir "$1" && mount --bind "$keep" "$1" && shift 2 && exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", needed, private, *command]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="switching users needs root")
def test_a_non_root_grader_after_a_root_grader_grades_or_says_what_to_set(tmp_path):
    # Root grades first: its slot folder (mode 0700) exists from then on.
    claimed = subprocess.run([sys.executable, "-c", "from grader import sandbox; sandbox.claim_slot(); "
                              "print(sandbox.slot_directory())"], env={**os.environ, "PYTHONPATH": course.REPO},
                             capture_output=True, text=True, check=True)
    assert os.stat(claimed.stdout.strip()).st_uid == 0
    home = tempfile.mkdtemp(prefix="grader-user-")
    try:
        path = course.setup(os.path.join(home, "course"), assignments=["attention"])
        course.generate(path, "attention")
        (tmp_path / "inbox" / "someone").mkdir(parents=True)
        shutil.copy(os.path.join(path, "source", "attention", "attention.ipynb"), tmp_path / "inbox" / "someone")
        course.collect(path, "attention", str(tmp_path / "inbox"))
        subprocess.run(["chown", "-R", f"{UNPRIVILEGED_UID}:{UNPRIVILEGED_UID}", home], check=True)
        graded = run_as(UNPRIVILEGED_UID, home, "autograde", "course", "attention", "--workers", "1")
        assert graded.returncode == 0, graded.stderr[-3000:]
        assert "someone" in graded.stdout and "9 / 9" in graded.stdout
        # A slot folder this user cannot use (made by root for it): a clear refusal, not zeros.
        theirs = os.path.join(tempfile.gettempdir(), f"grader-slots-{sandbox.SANDBOX_UID_BASE}-uid{UNPRIVILEGED_UID}")
        shutil.rmtree(theirs)
        os.mkdir(theirs, 0o700)
        refused = run_as(UNPRIVILEGED_UID, home, "autograde", "course", "attention", "--force")
        assert refused.returncode != 0
        assert theirs in refused.stderr and "set GRADER_SANDBOX_UID_BASE" in refused.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(os.path.join(tempfile.gettempdir(),
                                   f"grader-slots-{sandbox.SANDBOX_UID_BASE}-uid{UNPRIVILEGED_UID}"),
                      ignore_errors=True)
