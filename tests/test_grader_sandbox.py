"""Attacks run as real notebooks in the sandbox: every attack under bubblewrap, and
those that test what the user backend enforces by other means (permissions,
seccomp, rlimits on a shared host) under the user backend too.

The notebooks skip the Keras import, so each starts in seconds; each backend's
attacks run once, two at a time, in a module fixture, and each test checks one attack.
"""

import os
import pathlib
import queue
import re
import shutil
import socket
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import nbformat
import pytest

from grader import assignment, course, execute, sandbox, verdicts
from tests.grading_state import accepting

SUPPORT_FILES = course.runtime_files(assignment.load("attention"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMITS = sandbox.Limits(memory_bytes=2 * 2**30, cpu_seconds=60, processes=64,
                        file_bytes=8 * 2**20, output_bytes=50_000, cell_seconds=8,
                        notebook_seconds=30)
SEED = 1234
# An honest split_heads in plain numpy, and the capture that grades it.
HONEST = """import numpy as np
from grading_runtime import capture
def split_heads(x, num_heads):
    b, t, w = x.shape
    return x.reshape(b, t, num_heads, w // num_heads).transpose(0, 2, 1, 3)
capture("attention.split_heads", split_heads)"""
TRY_EACH = """for p in {paths!r}:
    try:
        {action}
    except OSError as e:
        print('blocked', type(e).__name__)"""


# The user backend's notebooks run in a slot range of their own: it kills every process of
# its slot's uid after each notebook, and other test runs on this host use the first slots.
SLOTS = {"bwrap": (0, 1), "user": (300, 301)}
# What the user backend enforces differently from bubblewrap: file permissions, seccomp,
# rlimits and process clean-up on the shared host, and the shared wall-clock and output limits.
USER_ATTACKS = ["honest", "sigkill_self", "infinite_loop", "memory_bomb", "fork_bomb", "output_flood",
                "big_file", "sysv_ipc", "working_dir_fill", "read_secrets", "write_outside", "network",
                "symlink_capture"]
both_backends = pytest.mark.parametrize("backend", ["bwrap", "user"])


def attacks(secret, canary, port, references):
    reads = [str(secret), *references, "/etc/shadow"]
    writes = [str(canary), "/usr/lib/python3/evil.py", "/etc/passwd",
              f"{REPO}/grader/runtime/grading_runtime.py", "grading_runtime.py"]
    return {
        "honest": [HONEST, "import os; print('in', os.getcwd(), 'as', os.getuid())"],
        "os_exit": [HONEST, "import os; os._exit(0)", "print('after')"],
        "sys_exit": [HONEST, "import sys; sys.exit(3)", "print('after')"],
        "segfault": [HONEST, "import ctypes; ctypes.string_at(0)", "print('after')"],
        "sigkill_self": [HONEST, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        "infinite_loop": ["while True: pass", HONEST],
        "notebook_time": ["import time; time.sleep(4)", "import time; time.sleep(4)", HONEST],
        "memory_bomb": ["x = bytearray(8 * 2**30)", HONEST],
        "fork_bomb": ["import os\nn = 0\ntry:\n    for _ in range(10000):\n        if os.fork() == 0:\n"
                      "            import time; time.sleep(30); os._exit(0)\n        n += 1\n"
                      "except OSError as e:\n    print('fork refused after', n, e)", HONEST],
        "output_flood": ["for _ in range(20000): print('x' * 100)",
                         "import os\nfor _ in range(10000): os.write(1, b'y' * 10000)", HONEST],
        "big_file": ["open('big', 'wb').write(b'0' * 64 * 2**20)", HONEST],
        "sysv_ipc": ["import ctypes\nlibc = ctypes.CDLL(None)\nlibc.shmat.restype = ctypes.c_void_p\n"
                     "segment = libc.shmget(0, 64 * 2**20, 0o1600)\n"  # IPC_PRIVATE, IPC_CREAT
                     "ctypes.memset(libc.shmat(segment, None, 0), 1, 64 * 2**20)\n"
                     "print('made', segment, libc.semget(0, 4, 0o1600), libc.msgget(0, 0o1600))\n"
                     "import os\nname = f'/grader-test-{os.getpid()}'.encode()\n"
                     "queue = ctypes.CDLL('librt.so.1').mq_open(name, 0o302, 0o600, None)\n"  # O_CREAT|O_EXCL|O_RDWR
                     "print('POSIX queue', 'refused' if queue == -1 else 'made')", HONEST],
        "working_dir_fill": ["for i in range(64):\n    open(f'fill{i}', 'wb').write(b'0' * 4 * 2**20)\n"
                             "print('wrote 256 MiB')", HONEST],
        "read_secrets": [TRY_EACH.format(paths=reads, action="print(open(p).read()[:50])")],
        "write_outside": [TRY_EACH.format(paths=writes, action="open(p, 'w').write('pwned'); print('wrote', p)")],
        "network": ["import socket\nfor host in ['127.0.0.1', '8.8.8.8']:\n    try:\n"
                    f"        socket.create_connection((host, {port}), timeout=2); print('connected')\n"
                    "    except OSError as e: print('blocked', type(e).__name__)"],
        "pickle_capture": ["import numpy as np, os\n"
                           "np.savez(os.environ['GRADER_CAPTURE_DIR'] + '/attention.split_heads.npz', "
                           "call0_output0=np.array([object()], dtype=object))"],
        "symlink_capture": ["import os\n"
                            "os.symlink('/etc/passwd', os.environ['GRADER_CAPTURE_DIR'] + "
                            "'/attention.split_heads.error.txt')"],
        "always_equal": ["import numpy as np, numpy.testing, builtins\n"
                         "class Equal:\n    def __eq__(self, other): return True\n"
                         "numpy.testing.assert_allclose = lambda *a, **k: None\n"
                         "np.allclose = lambda *a, **k: True\nbuiltins.isinstance = lambda *a: True\n"
                         "from grading_runtime import capture\n"
                         "capture('attention.split_heads', lambda x, num_heads: Equal())"],
        "patched_capture": ["import numpy as np, os, grading_runtime\n"
                            "def fake(case_id, fn):\n"
                            "    np.savez(os.environ['GRADER_CAPTURE_DIR'] + f'/{case_id}.npz', "
                            "call0_output0=np.zeros((2, 2, 4, 3)))\n"
                            "grading_runtime.capture = fake\n"
                            "grading_runtime.capture('attention.split_heads', None)"],
        "patched_traceback": ["import IPython\nip = IPython.get_ipython()\n"
                              "ip.showtraceback = lambda *a, **k: print('all tests passed')\n"
                              "from grading_runtime import capture\n"
                              "capture('attention.split_heads', lambda x, num_heads: 1 / 0)"],
    }


def run(slots, backend, sources, limits):
    """Run a notebook of `sources` in a free slot of `slots` (a queue: one notebook per slot at a time)."""
    slot = slots.get()
    try:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        capture_dir = tempfile.mkdtemp(prefix="test-capture-")
        if os.geteuid() == 0:
            os.chown(capture_dir, sandbox.sandbox_uid(slot), sandbox.sandbox_uid(slot))
        execution = execute.run_notebook(nb, support_files=SUPPORT_FILES, seed=SEED,
                                         capture_dir=capture_dir, limits=limits, slot=slot, backend=backend)
        verdict = verdicts.judge_case("attention.split_heads", capture_dir, SEED)
        shutil.rmtree(capture_dir)
    finally:
        slots.put(slot)
    text = "".join(str(o.get("text", "")) + str(o.get("ename", "")) + str(o.get("evalue", ""))
                   for c in nb.cells for o in c.outputs)
    return execution, verdict, text


def run_attacks(backend, root):
    """({attack: (execution, verdict, text)}, connections the listener got, the canary file)."""
    secret, canary = root / "gradebook.db", root / "canary.txt"
    secret.write_text("SECRET-GRADEBOOK")
    canary.write_text("unchanged")
    references = [f"{REPO}/reference_impl/layers.py", f"{REPO}/assignments/attention/reference.py"]
    if backend == "user":
        # The user backend shares the host's files: the grader closes its own to other users
        # (`close_to_sandbox`, as `autograde` does; tests/test_grader_sandbox_user.py shows it
        # on a real course). Here: copies of the references, beside the secret.
        for path in references:
            shutil.copy(path, root)
        references = [str(root / os.path.basename(p)) for p in references]
        sandbox.close_to_sandbox([str(root)], sandbox.sandbox_uid(SLOTS["user"][0]))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    notebooks = attacks(secret, canary, listener.getsockname()[1], references)
    if backend == "user":
        notebooks = {name: notebooks[name] for name in USER_ATTACKS}
    limits = {name: LIMITS for name in notebooks}
    limits["notebook_time"] = replace(LIMITS, cell_seconds=5, notebook_seconds=6)
    limits["working_dir_fill"] = replace(LIMITS, scratch_bytes=16 * 2**20, tmp_bytes=16 * 2**20)
    slots = queue.Queue()
    for slot in SLOTS[backend]:
        slots.put(slot)
    with accepting(listener) as connections, ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(run, slots, backend, notebooks[name], limits[name]) for name in notebooks}
        results = {name: future.result() for name, future in futures.items()}
    return results, connections, canary


@pytest.fixture(scope="module")
def outcome():
    """outcome(backend): that backend's attacks, run on first use."""
    done, roots = {}, []

    def of(backend):
        if backend not in done:
            # A folder any user can reach and write: only the sandbox keeps the secret from the kernel.
            roots.append(tempfile.mkdtemp(prefix="grader-test-secrets-"))
            os.chmod(roots[-1], 0o777)
            done[backend] = run_attacks(backend, pathlib.Path(roots[-1]))
        return done[backend]
    yield of
    for root in roots:
        shutil.rmtree(root)


@both_backends
def test_honest_code_runs_as_an_unprivileged_user_in_its_working_directory(outcome, backend):
    execution, verdict, text = outcome(backend)[0]["honest"]
    assert verdict.passed and execution.events == [], (verdict.message, execution, text)
    cwd, uid = re.search(r"in (\S+) as (\d+)", text).groups()
    assert cwd == "/scratch" if backend == "bwrap" else os.path.basename(cwd).startswith("grader-work-")
    if os.geteuid() == 0:
        assert int(uid) in [sandbox.sandbox_uid(slot) for slot in SLOTS[backend]]


@pytest.mark.parametrize("backend, attack", [("bwrap", "os_exit"), ("bwrap", "segfault"),
                                             ("bwrap", "sigkill_self"), ("user", "sigkill_self")])
def test_killing_the_kernel_keeps_earlier_work_and_is_reported(outcome, backend, attack):
    execution, verdict, text = outcome(backend)[0][attack]
    assert verdict.passed and "after" not in text
    assert any("kernel died" in e for e in execution.events), execution.events


def test_sys_exit_is_just_an_error(outcome):
    execution, verdict, text = outcome("bwrap")[0]["sys_exit"]
    assert verdict.passed and "after" in text, (execution, verdict)


@both_backends
def test_infinite_loop_is_stopped_by_the_cell_time_limit(outcome, backend):
    execution, verdict, _ = outcome(backend)[0]["infinite_loop"]
    assert any("longer than 8 s" in e for e in execution.events)
    assert not verdict.passed and "no outputs" in verdict.message


def test_notebook_time_limit(outcome):
    execution, verdict, _ = outcome("bwrap")[0]["notebook_time"]
    assert any("time limit" in e or "longer than" in e for e in execution.events), execution.events
    assert not verdict.passed


@both_backends
def test_memory_bomb_is_refused_and_the_kernel_survives(outcome, backend):
    execution, verdict, text = outcome(backend)[0]["memory_bomb"]
    assert "MemoryError" in text and verdict.passed, (execution, verdict)


@both_backends
def test_fork_bomb_is_contained(outcome, backend):
    _, verdict, text = outcome(backend)[0]["fork_bomb"]
    assert "fork refused" in text and verdict.passed
    if backend == "user" and os.geteuid() == 0:  # no namespace ends its children: the grader does
        # Not even a zombie: it would count toward the next student's process limit in this slot.
        assert all(sandbox._processes_of(sandbox.sandbox_uid(slot), zombies=True) == [] for slot in SLOTS["user"])


@both_backends
def test_output_flood_is_capped(outcome, backend):
    _, verdict, text = outcome(backend)[0]["output_flood"]
    assert len(text) < 2 * LIMITS.output_bytes
    assert "discarded" in text and verdict.passed


@both_backends
def test_system_v_ipc_objects_end_with_the_notebook(outcome, backend):
    """A shared memory segment (64 MiB, touched), a semaphore set and a message queue outlive their
    processes: none may stay on the host, holding memory for the rest of the class. A POSIX message
    queue (no file to remove) cannot be made at all."""
    _, verdict, text = outcome(backend)[0]["sysv_ipc"]
    made, posix = text.split("\n")[:2]
    assert made.startswith("made") and "-1" not in made and posix == "POSIX queue refused" and verdict.passed, text
    assert [sandbox.user_ipc_objects(sandbox.sandbox_uid(slot)) for slot in SLOTS[backend]] == [[], []]


@both_backends
def test_file_size_limit(outcome, backend):
    _, verdict, text = outcome(backend)[0]["big_file"]
    assert "File too large" in text and verdict.passed  # Python ignores SIGXFSZ: write fails


@both_backends
def test_the_working_directory_is_bounded(outcome, backend):
    execution, verdict, text = outcome(backend)[0]["working_dir_fill"]
    if backend == "bwrap":  # a sized tmpfs: the write fails, the kernel goes on
        assert "wrote 256 MiB" not in text
        assert "No space left on device" in text and verdict.passed, text
    else:
        # The host's disk, watched: the worker stops the kernel past scratch_bytes + tmp_bytes,
        # while the cell runs or, for a writer faster than the poll, when the cell ends; the
        # cells after it (the capture) never run.
        assert any("into its working directory; the kernel was stopped" in e for e in execution.events), execution
        assert not verdict.passed


@both_backends
def test_course_files_and_reference_are_invisible(outcome, backend):
    _, _, text = outcome(backend)[0]["read_secrets"]
    assert "SECRET" not in text and "def " not in text
    assert text.count("blocked") == 4


@both_backends
def test_writes_outside_scratch_fail_and_canary_is_unchanged(outcome, backend):
    _, _, text = outcome(backend)[0]["write_outside"]
    assert outcome(backend)[2].read_text() == "unchanged"
    assert "wrote" not in text and text.count("blocked") == 5


@both_backends
def test_network_is_unreachable_and_the_listener_sees_nothing(outcome, backend):
    _, _, text = outcome(backend)[0]["network"]
    assert outcome(backend)[1] == [] and "connected" not in text and text.count("blocked") == 2
    if backend == "user":  # refused by seccomp, not merely unroutable
        assert text.count("blocked PermissionError") == 2


@pytest.mark.parametrize("backend, attack", [("bwrap", "pickle_capture"), ("bwrap", "symlink_capture"),
                                             ("user", "symlink_capture"), ("bwrap", "always_equal"),
                                             ("bwrap", "patched_capture"), ("bwrap", "patched_traceback")])
def test_forged_or_faked_results_earn_nothing(outcome, backend, attack):
    _, verdict, _ = outcome(backend)[0][attack]
    assert not verdict.passed
    if attack == "pickle_capture":
        assert "only plain numeric arrays" in verdict.message
    if attack == "symlink_capture":  # the grader does not read the host's file through it
        assert "root:" not in verdict.message and "could not read" in verdict.message
    if attack == "patched_traceback":
        assert "ZeroDivisionError" in verdict.message


def test_refuses_without_bwrap_unless_unsafe(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="--unsafe-no-sandbox"):
        sandbox.check_available()


def test_unsafe_mode_runs_without_the_sandbox(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HONEST),
                                         nbformat.v4.new_code_cell("import os; print(os.getcwd())")])
    execution = execute.run_notebook(nb, support_files=SUPPORT_FILES, seed=SEED,
                                     capture_dir=str(tmp_path), limits=LIMITS, unsafe=True)
    assert execution.events == []
    assert verdicts.judge_case("attention.split_heads", str(tmp_path), SEED).passed
    assert "grader-unsafe-" in nb.cells[1].outputs[0]["text"]


def test_a_python_environment_under_tmp_is_bound_over_the_private_tmp(monkeypatch):
    """A clone in /tmp works: the private /tmp is mounted first, the environment on top of it."""
    monkeypatch.setattr(sandbox, "system_binds", lambda: ["/usr", "/tmp/clone/.venv"])
    args = sandbox.bwrap_args(runtime_dir="/tmp/run", capture_dir="/tmp/cap", support_files={}, env={},
                              limits=LIMITS, sources={})
    private_tmp = args.index("--tmpfs")
    assert args[private_tmp + 1] == "/tmp"
    assert args.index("/tmp/clone/.venv") > private_tmp


def test_a_kernel_that_never_starts_is_started_afresh_then_a_grader_fault(tmp_path, monkeypatch):
    """No student code runs before the kernel answers, so a kernel that dies at start-up (a
    loaded host, a broken sandbox) must never become the student's zero."""
    starts = []

    def dies_at_start(manager, extra_arguments=None):
        starts.append(1)
        return ["/bin/sh", "-c", "echo the kernel could not start >&2; exit 3"]

    monkeypatch.setattr(execute.SandboxedKernelManager, "format_kernel_cmd", dies_at_start)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HONEST)])
    with pytest.raises(execute.KernelDidNotStart) as failure:
        execute.run_notebook(nb, support_files=SUPPORT_FILES, seed=SEED, capture_dir=str(tmp_path),
                             limits=LIMITS, unsafe=True)
    assert len(starts) == execute.KERNEL_START_ATTEMPTS == 2
    assert "did not start" in str(failure.value) and "the kernel could not start" in str(failure.value)
    assert nb.cells[0].outputs == []
