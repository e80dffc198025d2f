"""The user sandbox, for containers that forbid user namespaces (Gradescope's, many
Kubernetes spawners'): how it is chosen, and a real course graded under it where one
student's notebook tries the network, the grader's files and a fork bomb.

The attacks shared with bubblewrap run under both backends in test_grader_sandbox.py.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import nbformat
import pytest
from nbgrader.api import Gradebook

from grader import course, sandbox
from grader.gradescope.autograder import KIT
from tests.grading_state import accepting

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the user sandbox switches users: root only")
ATTACK = """import os, socket
for host in ['127.0.0.1', '8.8.8.8']:
    try:
        socket.create_connection((host, {port}), timeout=2)
        print('connected to', host)
    except OSError as e:
        print('network', host, type(e).__name__)
for path in {paths!r}:
    try:
        print('read', path, open(path, 'rb').read(40))
    except OSError as e:
        print('file', type(e).__name__)
children = []
try:
    for _ in range(10000):
        pid = os.fork()
        if pid == 0:
            import time
            time.sleep(2)
            os._exit(0)
        children.append(pid)
except OSError as e:
    print('fork refused after', len(children), type(e).__name__)
for pid in children:
    os.waitpid(pid, 0)
"""


@pytest.fixture
def fresh_choice(monkeypatch):
    monkeypatch.setattr(sandbox, "_CHOSEN", {})
    monkeypatch.delenv(sandbox.BACKEND_VARIABLE, raising=False)


@as_root
def test_auto_takes_the_user_sandbox_when_bubblewrap_cannot_start(fresh_choice, monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)  # no bwrap here
    backend, why = sandbox.choose_backend()
    assert backend == "user" and "bubblewrap (bwrap) is not installed" in why
    assert sandbox.describe_backend(backend, why).startswith("sandbox: user (separate unprivileged user")


def test_the_backend_can_be_forced_and_a_wrong_name_is_refused(fresh_choice, monkeypatch):
    monkeypatch.setenv(sandbox.BACKEND_VARIABLE, "bubble")
    with pytest.raises(sandbox.SandboxUnavailable, match="unknown sandbox 'bubble'.*auto, bwrap, user"):
        sandbox.choose_backend()
    if os.geteuid() == 0:
        monkeypatch.setenv(sandbox.BACKEND_VARIABLE, "user")
        assert sandbox.choose_backend() == ("user", "asked for")


def test_the_user_sandbox_refuses_without_root(fresh_choice, monkeypatch):
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 1000)
    with pytest.raises(sandbox.SandboxUnavailable, match="only root can switch to.*--sandbox bwrap"):
        sandbox.choose_backend("user")


@as_root
def test_a_uid_of_another_account_is_refused(fresh_choice):
    with pytest.raises(sandbox.SandboxUnavailable, match="uid 0 belongs to the account 'root'"):
        sandbox.ensure_sandbox_user(0)


def kit_copy(root):
    """The kit as a course would install it: the grader's references live there, and the user
    sandbox closes them to other users (this checkout's own folders stay as they are)."""
    kit = os.path.join(root, "kit")
    os.mkdir(kit)
    for name in (*KIT, "assignments"):  # what Gradescope's bundle ships, and every assignment
        source = os.path.join(course.REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(kit, name), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, kit)
    return kit


@pytest.mark.long  # a whole course graded in the sandbox: `make test-long`
@as_root
def test_network_grader_files_and_fork_bomb_are_refused_and_the_student_is_graded():
    root = tempfile.mkdtemp(prefix="grader-user-sandbox-")
    os.chmod(root, 0o755)  # an ordinary folder other users can reach, as on a grading host
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    # Slots of its own: the user sandbox kills every process of its slot's uid after a notebook.
    uid_base = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "61000")) + 500
    try:
        kit = kit_copy(root)
        path = course.setup(os.path.join(root, "course"), assignments=["attention"])
        course.generate(path, "attention")
        secrets = [os.path.join(path, "gradebook.db"), os.path.join(path, "source", "attention", "attention.ipynb"),
                   os.path.join(kit, "assignments", "attention", "reference.py"),
                   os.path.join(kit, "reference_impl", "layers.py")]
        assert all(sandbox._as_user(uid_base, lambda: sandbox._openable(secrets)))  # readable before
        nb = nbformat.read(secrets[1], as_version=4)
        nb.cells.insert(0, nbformat.v4.new_code_cell(ATTACK.format(port=listener.getsockname()[1], paths=secrets)))
        os.makedirs(os.path.join(root, "inbox", "mallory"))
        nbformat.write(nb, os.path.join(root, "inbox", "mallory", "attention.ipynb"))
        course.collect(path, "attention", os.path.join(root, "inbox"))
        env = {key: value for key, value in os.environ.items() if key != "GRADER_ASSIGNMENTS"}
        env.update(PYTHONPATH=kit, GRADER_SANDBOX_UID_BASE=str(uid_base))  # the copy's assignments
        with accepting(listener) as connections:
            graded = subprocess.run([sys.executable, "-m", "grader", "autograde", path, "attention",
                                     "--sandbox", "user", "--workers", "1"],
                                    env=env, cwd=root, capture_output=True, text=True, timeout=600)
        assert graded.returncode == 0, graded.stderr[-3000:]
        assert "sandbox: user (separate unprivileged user + seccomp)" in graded.stderr
        with Gradebook(course.db_url(path)) as gb:
            assert gb.find_submission("attention", "mallory").score == 12  # graded in full
        out = os.path.join(path, "autograded", "mallory", "attention")
        executed = nbformat.read(os.path.join(out, "attention.ipynb"), as_version=4)
        text = "".join(o.get("text", "") for o in executed.cells[0].outputs)
        assert connections == [] and "connected" not in text
        assert "network 127.0.0.1 PermissionError" in text and "network 8.8.8.8 PermissionError" in text
        assert text.count("file PermissionError") == 4 and "read " not in text, text
        assert "fork refused after" in text and "BlockingIOError" in text, text
        with open(os.path.join(out, "grader.log")) as f:
            assert "sandbox: user" in f.read()
        # The grader closed its files to other users (chmod o=), and no sandbox process is left.
        for folder in (path, os.path.join(kit, "assignments"), os.path.join(kit, "reference_impl")):
            assert os.stat(folder).st_mode & 0o007 == 0, folder
        assert sandbox._processes_of(uid_base) == []
    finally:
        listener.close()
        shutil.rmtree(root, ignore_errors=True)
