"""Attacks run as real notebooks in the bubblewrap sandbox (no Keras import: fast)."""

import os
import socket
import tempfile
import threading

import nbformat
import numpy as np
import pytest

from grader import execute, sandbox, verdicts
from grader.runtime import grading_runtime

RUNTIME = os.path.abspath(grading_runtime.__file__)
LIMITS = sandbox.Limits(memory_bytes=2 * 2**30, cpu_seconds=60, processes=64,
                        file_bytes=8 * 2**20, output_bytes=50_000, cell_seconds=8,
                        notebook_seconds=30)
# An honest split_heads in plain numpy, and the capture that grades it.
HONEST = """import numpy as np
from grading_runtime import capture
def split_heads(x, num_heads):
    b, t, w = x.shape
    return x.reshape(b, t, num_heads, w // num_heads).transpose(0, 2, 1, 3)
capture("attention.split_heads", split_heads)"""


def run(*sources, limits=LIMITS):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    capture_dir = tempfile.mkdtemp(prefix="test-capture-")
    if os.geteuid() == 0:
        os.chown(capture_dir, sandbox.sandbox_uid(0), sandbox.sandbox_uid(0))
    seed = 1234
    execution = execute.run_notebook(nb, support_files={"grading_runtime.py": RUNTIME}, seed=seed,
                                     capture_dir=capture_dir, limits=limits)
    verdict = verdicts.judge_case("attention.split_heads", capture_dir, seed)
    text = "".join(str(o.get("text", "")) + str(o.get("ename", "")) + str(o.get("evalue", "")) for c in nb.cells for o in c.outputs)
    return execution, verdict, text


def test_sandbox_runs_honest_code_and_capture_passes():
    execution, verdict, text = run(HONEST, "import os; print(os.getcwd(), os.getuid())")
    assert verdict.passed, verdict.message
    assert "/scratch" in text and execution.events == []


@pytest.mark.parametrize("attack", [
    "import os; os._exit(0)",
    "import sys; sys.exit(3)",
    "import ctypes; ctypes.string_at(0)",                         # segfault
    "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
])
def test_kernel_exits_keep_earlier_honest_work(attack):
    execution, verdict, _ = run(HONEST, attack, "raise RuntimeError('after the attack')")
    assert verdict.passed  # honest work captured before the attack still counts
    if "sys.exit" not in attack:  # SystemExit is caught by IPython; the others kill the kernel
        assert any("kernel died" in e for e in execution.events), execution.events


def test_infinite_loop_is_stopped_by_the_cell_time_limit():
    execution, verdict, _ = run("while True: pass", HONEST)
    assert any("longer than" in e for e in execution.events)
    assert not verdict.passed and "no outputs" in verdict.message


def test_notebook_time_limit():
    limits = sandbox.Limits(**{**LIMITS.__dict__, "cell_seconds": 5, "notebook_seconds": 6})
    execution, _, _ = run("import time; time.sleep(4)", "import time; time.sleep(4)", "1", limits=limits)
    assert any("time limit" in e or "longer than" in e for e in execution.events), execution.events


def test_memory_bomb_is_refused():
    execution, verdict, text = run("x = bytearray(8 * 2**30)", HONEST)
    assert "MemoryError" in text
    assert verdict.passed  # the kernel survives; later honest cells still run


def test_fork_bomb_is_contained():
    execution, verdict, text = run(
        "import os\nn = 0\ntry:\n    for _ in range(10000):\n        if os.fork() == 0:\n"
        "            import time; time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError as e:\n"
        "    print('fork refused after', n, e)", HONEST)
    assert "fork refused" in text
    assert verdict.passed


def test_output_flood_is_capped():
    execution, verdict, text = run(
        "for _ in range(20000): print('x' * 100)",
        "import os\nfor _ in range(10000): os.write(1, b'y' * 10000)", HONEST)
    assert len(text) < 2 * LIMITS.output_bytes
    assert "discarded" in text and verdict.passed


def test_course_files_and_reference_are_invisible(tmp_path):
    secret = tmp_path / "gradebook.db"
    secret.write_text("SECRET-GRADEBOOK")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    _, _, text = run(
        f"for p in [{str(secret)!r}, {repo + '/reference_impl/layers.py'!r}, "
        f"{repo + '/grader/assignments/attention.py'!r}, '/etc/shadow']:\n"
        "    try: print(open(p).read()[:50])\n    except OSError as e: print('blocked', type(e).__name__)")
    assert "SECRET" not in text and "def scaled_dot_product_attention" not in text
    assert text.count("blocked") == 4


def test_writes_outside_scratch_fail_and_canary_is_unchanged(tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("unchanged")
    os.chmod(tmp_path, 0o777)
    _, _, text = run(
        f"for p in [{str(canary)!r}, '/usr/lib/python3/evil.py', '/etc/passwd', "
        f"{os.path.dirname(RUNTIME) + '/grading_runtime.py'!r}, 'grading_runtime.py']:\n"
        "    try:\n        open(p, 'w').write('pwned'); print('wrote', p)\n"
        "    except OSError as e: print('blocked', type(e).__name__)")
    assert canary.read_text() == "unchanged"
    assert "wrote" not in text and text.count("blocked") == 5


def test_network_is_unreachable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(8)
    port = listener.getsockname()[1]
    seen = []
    thread = threading.Thread(target=lambda: seen.append(_accept(listener)))
    thread.start()
    _, _, text = run(
        "import socket\nfor host in ['127.0.0.1', '8.8.8.8']:\n    try:\n"
        f"        socket.create_connection((host, {port}), timeout=2); print('connected')\n"
        "    except OSError as e: print('blocked', type(e).__name__)")
    thread.join()
    assert seen == [None] and "connected" not in text and text.count("blocked") == 2


def _accept(listener):
    try:
        return listener.accept()
    except OSError:
        return None


def test_capture_forgery_with_pickle_payload_is_rejected():
    _, verdict, _ = run(
        "import numpy as np, os\n"
        "np.savez(os.environ['GRADER_CAPTURE_DIR'] + '/attention.split_heads.npz', "
        "call0_output0=np.array([object()], dtype=object))")
    assert not verdict.passed and "only plain numeric arrays" in verdict.message


def test_always_equal_object_and_patched_numpy_testing_earn_nothing():
    _, verdict, text = run(
        "import numpy as np, numpy.testing, builtins\n"
        "class Equal:\n    def __eq__(self, other): return True\n    __array_priority__ = 1000\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "np.allclose = lambda *a, **k: True\nbuiltins.isinstance = lambda *a: True\n"
        "from grading_runtime import capture\n"
        "capture('attention.split_heads', lambda x, num_heads: Equal())")
    assert not verdict.passed


def test_monkeypatched_capture_cannot_fake_a_pass():
    _, verdict, _ = run(
        "import numpy as np, os, grading_runtime\n"
        "def fake(case_id, fn):\n"
        "    np.savez(os.environ['GRADER_CAPTURE_DIR'] + f'/{case_id}.npz', call0_output0=np.zeros((2, 2, 4, 3)))\n"
        "grading_runtime.capture = fake\n"
        "grading_runtime.capture('attention.split_heads', None)")
    assert not verdict.passed


def test_refuses_without_bwrap_unless_unsafe(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="--unsafe-no-sandbox"):
        sandbox.check_available()
