"""Courses to grade, what a graded course ended with, and which processes are running: for comparing grading runs."""

import contextlib
import json
import os
import threading

import nbformat
from nbgrader.api import SubmittedAssignment

from course_demo.sample_students import CAUSAL_OFF_BY_ONE, HEADS, SDPA, student_notebook, write_inbox
from grader import assignment, course, submission

ASSIGNMENT = "attention"


def collected_course(path, inbox, **setup):
    """A released attention course with three submissions collected from `inbox`:
    correct, the unchanged stub, and a known bug (causal mask off by one)."""
    path = course.setup(path, assignments=[ASSIGNMENT], **setup)
    release_dir = course.release(path, ASSIGNMENT)
    release_nb = nbformat.read(os.path.join(release_dir, "attention.ipynb"), as_version=4)
    source_nb = nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"), as_version=4)
    write_inbox({"correct": source_nb, "stub": release_nb,
                 "off_by_one": student_notebook(release_nb, {"sdpa": SDPA, "causal": CAUSAL_OFF_BY_ONE,
                                                             "heads": HEADS})}, inbox)
    course.collect(path, ASSIGNMENT, inbox)
    return path


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


def gradebook_state(path, assignment):
    """Every student's submission rows and per-cell auto scores, from nbgrader's Gradebook."""
    state = {}
    with course.gradebook(path) as gb:
        for student in gb.students:
            rows = gb.db.query(SubmittedAssignment).filter(SubmittedAssignment.student == student).all()
            notebooks = gb.find_submission(assignment, student.id).notebooks
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


def run_measured(sources, support_files, seed, capture_dir, limits, slot, work_dir=None):
    """Run a notebook of `sources` in the sandbox from this (fresh) process; returns
    (execution, executed notebook, peak RSS in bytes of this grader process, of the largest
    sandbox process (or of this process before it exec'd, whichever is larger)). Meant for a spawned process, so the peaks are this run's alone."""
    import resource

    from grader import execute

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    execution = execute.run_notebook(nb, support_files=support_files, seed=seed, capture_dir=capture_dir,
                                     limits=limits, slot=slot, work_dir=work_dir)
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a spawned process would
    # report the size of the process it was forked from.
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    return execution, nb, peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def socket_swap_attack(slot=0, backend=None):
    """A notebook swaps its kernel's sockets for links to a Unix socket this process listens on,
    then dies so that the grader's client reconnects. Returns (connections the listener got,
    the notebook's printed text)."""
    import socket
    import tempfile

    from grader import execute, sandbox

    host_socket = os.path.join(tempfile.mkdtemp(), "host-service.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(host_socket)
    swap = ("import os\nfrom ipykernel.kernelapp import IPKernelApp\napp = IPKernelApp.instance()\n"
            "for key in ('shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port'):\n"
            "    path = f'{app.ip}-{getattr(app, key)}'\n    try:\n        os.unlink(path)\n"
            f"        os.symlink({host_socket!r}, path)\n        print('swapped')\n"
            "    except OSError as e:\n        print('blocked', type(e).__name__)\n"
            "import sys, time\nsys.stdout.flush(); time.sleep(1)\nos._exit(0)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(swap), nbformat.v4.new_code_cell("print(1)")])
    capture_dir = tempfile.mkdtemp()
    if os.geteuid() == 0:
        os.chown(capture_dir, sandbox.sandbox_uid(slot), sandbox.sandbox_uid(slot))
    support = course.runtime_files(assignment.load("attention"))
    with accepting(listener) as connections:
        execute.run_notebook(nb, support_files=support, seed=1, capture_dir=capture_dir, slot=slot, backend=backend)
    return len(connections), "".join(str(o.get("text", "")) for c in nb.cells for o in c.outputs)


@contextlib.contextmanager
def accepting(listener):
    """Accept every connection to the bound socket `listener` in a thread; yields the list of them."""
    listener.listen(8)
    listener.settimeout(0.2)
    connections, stop = [], threading.Event()

    def accept():
        while not stop.is_set():
            try:
                connections.append(listener.accept())
            except OSError:
                pass
    watcher = threading.Thread(target=accept)
    watcher.start()
    try:
        yield connections
    finally:
        stop.set()
        watcher.join()
        listener.close()
