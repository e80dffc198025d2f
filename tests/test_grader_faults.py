"""Faults and attacks aimed at the grader itself (issue 20): a student or a bad file
must never stop or strain the grading of others, and no failure may pass silently.

Hostile captures and metadata are checked in this process (fast); one course is then
graded end to end with the crashing submissions among honest ones.
"""

import csv
import json
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

from grader import assignment, cgroups, course, sandbox, verdicts
from grader.__main__ import main
from grader.runtime import grading_runtime
from grader.submission import restore_trusted_cells

SEED = 4242
CASE = "attention.split_heads"
ATTENTION = assignment.load("attention")


def honest_outputs(seed=SEED):
    reference = ATTENTION.references[ATTENTION.case_functions[CASE]]
    return grading_runtime.call_case(CASE, reference, seed, cases=ATTENTION.inputs.CASES)


def honest_capture(path):
    np.savez(path, **honest_outputs())


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
    expected = honest_outputs()
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
    assert graded["correct"] == graded["list_grade_id"] == graded["null_metadata"] == 12
    assert graded["raw_capture"] == 10  # everything but the causal mask case (2 points) it overwrote
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
    assert scores(path)["blocked"] == 12
    monkeypatch.chdir(root)
    main(["export", "course", "attention"])
    with open(os.path.join(path, "exports", "grades.csv")) as f:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == {"correct": 12, "raw_capture": 10, "list_grade_id": 12, "null_metadata": 12, "blocked": 12}
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


# --- Notebooks that strain the grader's side, run in the sandbox ------------------------

MiB = 2**20
STRAIN_SLOT = 200
STRAIN_LIMITS = sandbox.Limits(memory_bytes=2 * 2**30, cpu_seconds=120, processes=64, file_bytes=64 * MiB,
                               scratch_bytes=64 * MiB, tmp_bytes=32 * MiB, capture_bytes=16 * MiB,
                               output_bytes=100_000, cell_seconds=60, notebook_seconds=120)
FILL = """import errno, os
def fill(folder, chunk=b"0" * 2**20):
    written = 0
    try:
        with open(os.path.join(folder, "fill"), "wb") as f:
            while written < 2**30:
                f.write(chunk); f.flush(); written += len(chunk)
    except OSError as e:
        pass
    return written
"""
ACTIVE_HTML = '<b onmouseover="steal()">bold</b><script>fetch("/api")</script><img src=x onerror="steal()">'


def strains():
    return {
        "tmpfs_fill": [FILL + "for folder in ['/tmp', '/dev/shm', '/dev', '/scratch']:\n"
                       "    print(folder, fill(folder) // 2**20, 'MiB')"],
        "comm_flood": ["from comm import create_comm\n"
                       "for i in range(300):\n"
                       "    create_comm(target_name='jupyter.widget', data={'state': {'_model_module': 'x', "
                       "'_model_name': 'y', 'value': 'v' * 2**20}, 'buffer_paths': [['b']]}, buffers=[b'b' * 2**20])\n"
                       "print('sent 600 MiB of comm messages')"],
        "display_flood": ["from IPython.display import display, update_display\n"
                          "for _ in range(100):\n    display({'text/plain': 'x'}, raw=True, display_id='same')\n"
                          "for i in range(50):\n"
                          "    update_display({'text/plain': str(i) * 100_000}, raw=True, display_id='same')"],
        "active_output": ["from IPython.display import display, HTML, Javascript, Markdown\n"
                          f"display(HTML({ACTIVE_HTML!r}))\n"
                          "display(Javascript('alert(document.cookie)'))\n"
                          f"display(Markdown({ACTIVE_HTML!r}))\n"
                          "display({'image/svg+xml': '<svg onload=\"steal()\"></svg>'}, raw=True)"],
        "capture_flood": ["import os\nfor i in range(100):\n"
                          "    open(os.environ['GRADER_CAPTURE_DIR'] + f'/f{i}', 'wb').write(b'0' * 8 * 2**20)\n"
                          "print('wrote 800 MiB')"],
        # Each child alone is under the per-process limit; together they are over the sandbox's.
        "many_children": ["import multiprocessing, time\n"
                          "def hold(i):\n    block = bytearray(700 * 2**20)\n"
                          "    block[::4096] = b'1' * len(block[::4096])\n    time.sleep(3)\n"
                          "children = [multiprocessing.Process(target=hold, args=(i,)) for i in range(4)]\n"
                          "[c.start() for c in children]; [c.join() for c in children]\n"
                          "print('exit codes', [c.exitcode for c in children])"],
        # ipykernel turns fd 2 into outputs; its copy of the kernel's own stderr is the way out.
        "stderr_flood": ["import os, sys\nfor _ in range(300):\n"
                         "    os.write(sys.stderr._original_stdstream_copy, b'e' * 2**20)\nprint('stderr done')"],
    }


@pytest.fixture(scope="module")
def strained():
    import concurrent.futures
    import multiprocessing

    from tests.grading_state import run_measured

    support = course.runtime_files(ATTENTION)
    notebooks, outcomes = strains(), {}
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        # Slots (sandbox uids) of their own: other test runs on this host use the first ones,
        # and a fork bomb there must not starve these kernels of processes.
        for i, (name, sources) in enumerate(notebooks.items()):
            capture_dir = tempfile.mkdtemp(prefix=f"grader-test-capture-{name}-")  # the sandbox user reaches it
            slot = STRAIN_SLOT + i % 2
            if os.geteuid() == 0:
                os.chown(capture_dir, sandbox.sandbox_uid(slot), sandbox.sandbox_uid(slot))
            futures[name] = (capture_dir, pool.submit(run_measured, sources, support, SEED, capture_dir,
                                                      STRAIN_LIMITS, slot))
        for name, (capture_dir, future) in futures.items():
            execution, nb, grader_peak, sandbox_peak = future.result()
            outcomes[name] = dict(execution=execution, nb=nb, grader_peak=grader_peak, sandbox_peak=sandbox_peak,
                                  capture_bytes=execute_module().folder_bytes(capture_dir),
                                  text="".join(str(o.get("text", "")) for c in nb.cells for o in c.outputs))
            shutil.rmtree(capture_dir)
    return outcomes


# A fresh grader process with nbclient and numpy is about 150 MiB; ZeroMQ's receive buffers add
# up to ~300 MiB on a loaded host, where the grader drains a flood more slowly (431 MiB measured at
# load 7). Keeping the 600 MiB of a comm flood would be far above it.
GRADER_PEAK = 512 * MiB


def test_tmp_and_dev_shm_are_sized_and_dev_is_read_only(strained):
    outcome = strained["tmpfs_fill"]
    sizes = dict(line.split()[:2] for line in outcome["text"].splitlines())
    assert int(sizes["/tmp"]) <= 32 and int(sizes["/dev/shm"]) <= 32 and int(sizes["/dev"]) == 0
    assert int(sizes["/scratch"]) <= 64
    assert outcome["grader_peak"] < GRADER_PEAK
    # tmpfs pages are not resident memory of any process: the sizes above are what bounds them
    assert outcome["sandbox_peak"] < STRAIN_LIMITS.memory_bytes - 2 * STRAIN_LIMITS.tmp_bytes


@pytest.mark.skipif(cgroups.describe_accounting().startswith("rlimits"),
                    reason=f"this host bounds memory by {cgroups.describe_accounting()}")
def test_the_sandbox_memory_limit_holds_for_all_its_processes_together(strained):
    outcome = strained["many_children"]
    assert STRAIN_LIMITS.memory_bytes // 2 < outcome["execution"].sandbox_peak_bytes <= STRAIN_LIMITS.memory_bytes
    assert "exit codes" in outcome["text"] and "-9" in outcome["text"]  # 2.8 GiB asked: some were stopped
    assert any("memory limit (2048 MiB)" in event for event in outcome["execution"].events)


def test_comm_flood_is_dropped_unread(strained):
    outcome = strained["comm_flood"]
    assert "sent 600 MiB" in outcome["text"]
    assert outcome["grader_peak"] < GRADER_PEAK, outcome["grader_peak"] // MiB  # was 600 MiB more
    assert "widgets" not in outcome["nb"].metadata


def test_display_updates_count_against_the_output_cap(strained):
    outcome = strained["display_flood"]
    kept = len(nbformat.writes(outcome["nb"]))
    assert kept < 2 * STRAIN_LIMITS.output_bytes, kept  # 100 outputs x 50 updates of 100 kB without the count
    assert "discarded" in outcome["text"], outcome["execution"]


def test_active_content_never_reaches_staff(strained):
    outputs = [o for c in strained["active_output"]["nb"].cells for o in c.outputs]
    text = json.dumps(outputs)
    assert "<b>bold</b>" in text  # harmless markup is kept
    for active in ("<script", "onmouseover", "onerror", "onload", "alert(document.cookie)"):
        assert active not in text, active
    assert all(set(o.get("data", {})) <= set(execute_module().KEPT_MIME_TYPES) for o in outputs)


def execute_module():
    from grader import execute
    return execute


def test_capture_folder_quota_stops_the_kernel(strained):
    outcome = strained["capture_flood"]
    assert "wrote 800 MiB" not in outcome["text"]
    assert any("capture and kernel folders; the kernel was stopped" in e for e in outcome["execution"].events), \
        outcome["execution"]
    written = outcome["capture_bytes"]
    # The quota is polled (every 0.2 s, and when a cell ends): what the kernel writes in a poll
    # and the kill passes it, 200 MiB and more at the page cache's speed on a busy machine.
    # Stopped, it wrote less than half of the cell's 800 MiB.
    assert written < 400 * MiB, written // MiB


def test_stderr_streams_through_a_bounded_tail(strained):
    outcome = strained["stderr_flood"]
    assert "stderr done" in outcome["text"], outcome["execution"]  # no file on the host: no size limit hit
    assert 0 < len(outcome["execution"].kernel_stderr_tail) <= 4000
    assert outcome["grader_peak"] < GRADER_PEAK


@pytest.mark.parametrize("backend, slot", [
    ("bwrap", STRAIN_SLOT + 2),
    # The user backend shares the host's Unix sockets: only the grader's own links keep it safe.
    pytest.param("user", STRAIN_SLOT + 3, marks=pytest.mark.skipif(os.geteuid() != 0, reason="root only"))])
def test_the_grader_never_connects_to_a_host_socket_the_notebook_names(backend, slot):
    from tests.grading_state import socket_swap_attack
    connections, text = socket_swap_attack(slot=slot, backend=backend)
    assert connections == 0  # 6 on main, as the client reconnected through the links
    # As root the kernel folder is locked once the kernel has started (as any other user the swap
    # succeeds and reaches nothing: test_a_non_root_grader_connects_only_through_its_own_links).
    assert text.count("blocked PermissionError") == (5 if os.geteuid() == 0 else 0)


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


@pytest.mark.long  # a class graded by root, then by another user: `make test-long`
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
        assert "someone" in graded.stdout and "12 / 12" in graded.stdout
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


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="switching users needs root")
def test_a_non_root_grader_connects_only_through_its_own_links(tmp_path):
    """As any user but root the kernel can swap its sockets (its folder is its own): the grader
    still reaches only the kernel's sockets, through the hard links it made before any student code ran."""
    home = tempfile.mkdtemp(prefix="grader-user-")
    try:
        subprocess.run(["chown", "-R", f"{UNPRIVILEGED_UID}:{UNPRIVILEGED_UID}", home], check=True)
        code = ("import json; from tests.grading_state import socket_swap_attack; "
                "print(json.dumps(socket_swap_attack()))")
        command = ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups",
                   sys.executable, "-c", code]
        env = {"PATH": os.environ["PATH"], "HOME": home, "PYTHONPATH": course.REPO, "TMPDIR": home}
        done = subprocess.run(with_python_reachable(command), cwd=home, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        connections, text = json.loads(done.stdout.strip().splitlines()[-1])
        assert text.count("swapped") == 5 and connections == 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- Time limits, captures in total, old command names ----------------------------------


def test_time_limits_follow_the_measured_reference_run():
    from grader import limits
    assert limits.derived_limits(7.0, 3.0) == {"cell_seconds": 30, "notebook_seconds": 60}  # the floors
    assert limits.derived_limits(100, 50) == {"cell_seconds": 200, "notebook_seconds": 400}
    with open(limits.limits_file("attention")) as f:
        recorded = json.load(f)
    reference = recorded["reference"]
    assert {k: recorded[k] for k in ("cell_seconds", "notebook_seconds")} == limits.derived_limits(
        reference["notebook_seconds"], reference["slowest_cell_seconds"], recorded["multiple"])
    assigned = limits.assignment_limits("attention")
    assert (assigned.cell_seconds, assigned.notebook_seconds) == (recorded["cell_seconds"],
                                                                  recorded["notebook_seconds"])
    # An idle or looping attention notebook holds a worker for a minute or two, not 15.
    assert assigned.notebook_seconds <= 180 < sandbox.Limits().notebook_seconds
    assert limits.assignment_limits("no_such_assignment") == sandbox.Limits()


def test_a_notebooks_captures_are_read_up_to_their_total(tmp_path):
    from grader.submission import read_captures
    names = [f"attention.case{i}.npz" for i in range(12)]
    for name in names:
        (tmp_path / name).write_bytes(b"\0" * (10 * MiB))
    (captures, unread), _, peak = measured(read_captures, str(tmp_path), names, 64 * MiB)
    assert sum(len(data) for data in captures.values()) <= 64 * MiB
    assert len(captures) == 6 and unread == names[6:]
    assert peak < 70 * MiB  # was 12 x 64 MiB per notebook, in the worker and again in the grader


def test_release_is_an_old_name_for_generate(tmp_path, capsys):
    main(["setup", str(tmp_path / "course")])
    capsys.readouterr()
    main(["release", str(tmp_path / "course"), "attention"])
    out, err = capsys.readouterr()
    assert "now `python -m grader generate`" in err
    assert os.path.isfile(os.path.join(out.strip(), "attention.ipynb"))
