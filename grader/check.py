"""Quality checks of assignments, for course staff (`python -m grader check [ASSIGNMENT...]`).

* `problems`: the notebook, inputs.py, reference.py and bugs.py agree (every
  case id used is declared and every declared one used; every graded function
  has a reference and a bug catalogue).
* `grade_code`: a notebook's definitions (the solution, a mutant or an
  alternative) graded through the capture and verdict path, in this process
  (the tests use it: every bug loses points, every alternative gets full marks).
* `grade_in_sandbox`: the assignment set up in a fresh course, released, and
  two submissions graded one at a time in the real sandbox with the course
  commands: the source notebook (full marks expected) and the released stub
  (zero expected, no crash). Each notebook runs its training demos in full, a
  few CPU-minutes for all the assignments, so this is run after editing a
  notebook (`make check-assignments`), not in `make test`.
* `measure`: the solution's run in the sandbox, timed, and the assignment's
  time limits derived from it (`grader.limits`) written to its grading.json.
"""

import datetime
import json
import os
import platform
import shutil
import tempfile
import time

import nbformat
from rich.console import Console
from rich.table import Table

from grader import assignment as assignments, course, execute, limits, mutation, sandbox, verdicts
from grader.runtime import grading_runtime


def grade_code(assignment, code, seed=20251123, only=None):
    """{grade_id: (score, points, messages)} for `code` (definitions) run against the graded cells.

    `only`, a function name, restricts grading to the cells that capture it.
    """
    results = {}
    nb = assignment.notebook()
    with tempfile.TemporaryDirectory() as capture_dir, \
            mutation.grading_environment(assignment, capture_dir, seed):
        namespace = {"__name__": "__student__"}
        exec(compile(code, "<definitions>", "exec"), namespace)
        for cell in mutation.graded_cells(nb):
            if only is not None and only not in cell.functions:
                continue
            for case_id, fn in assignments.captures_in(cell.source):
                try:
                    grading_runtime.capture(case_id, namespace[fn])
                except Exception:  # recorded in <case>.error.txt, as in the sandbox
                    pass
            verdict = verdicts.judge_cell(cell.grade_id, cell.points, cell.source, capture_dir, seed)
            results[cell.grade_id] = (verdict.score, verdict.points,
                                      [case["message"] for case in verdict.cases])
    return results


def grade_in_sandbox(assignment, root):
    """({student: result}, seconds) for the source notebook ("solution") and the release ("released")."""
    path = course.setup(os.path.join(root, "course"), assignments=[assignment])
    release_dir = course.release(path, assignment)
    name = f"{assignment}.ipynb"
    for student, notebook in {"solution": os.path.join(path, "source", assignment, name),
                              "released": os.path.join(release_dir, name)}.items():
        os.makedirs(os.path.join(root, "inbox", student))
        nbformat.write(nbformat.read(notebook, as_version=4), os.path.join(root, "inbox", student, name))
    course.collect(path, assignment, os.path.join(root, "inbox"))
    started = time.perf_counter()
    results = {r["student"]: r for r in course.autograde(path, assignment, workers=1, progress=False)}
    return results, time.perf_counter() - started


def graded_right(assignment, results):
    """Full marks for the source notebook, zero (and graded cells) for the release."""
    solution, released = results["solution"], results["released"]
    return (0 < solution["score"] == solution["max_score"] and released["score"] == 0
            and bool(released["notebooks"][assignment]["cells"]))


def check(names=None, console=None):
    """Check each assignment (all by default); returns the names that failed, printing a table."""
    console = console or Console()
    names = names or assignments.names()
    table = Table(title=f"Grading in the sandbox ({os.cpu_count()} cores, {platform.node()}, "
                        f"{time.strftime('%Y-%m-%d')})")
    for column in ("assignment", "solution score", "solution s", "released score", "released s", "total s"):
        table.add_column(column, justify="left" if column == "assignment" else "right")
    wrong = []
    for name in names:
        problems = assignments.load(name).problems()
        if problems:
            console.print(f"[red]{name}: inconsistent[/red]\n  " + "\n  ".join(problems))
            wrong.append(name)
            continue
        root = tempfile.mkdtemp(prefix=f"grade-{name}-", dir=os.path.expanduser("~"))
        try:
            results, total = grade_in_sandbox(name, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if not graded_right(name, results):
            wrong.append(name)
        solution, released = results["solution"], results["released"]
        table.add_row(name, f"{solution['score']:g} / {solution['max_score']:g}",
                      f"{solution['notebooks'][name]['seconds']:.0f}",
                      f"{released['score']:g} / {released['max_score']:g}",
                      f"{released['notebooks'][name]['seconds']:.0f}", f"{total:.0f}")
    console.print(table)
    return wrong


def measure(assignment, multiple=limits.MULTIPLE, unsafe=False):
    """Run the solution notebook(s) of `assignment` in the sandbox, write and return its grading.json."""
    with tempfile.TemporaryDirectory(prefix="grader-measure-") as root:
        os.chmod(root, 0o755)  # the sandbox user reaches the support files
        path = course.setup(os.path.join(root, "course"), assignments=[assignment])
        course.generate(path, assignment)
        support = {}
        for name, data in course.released_files(path, assignment).items():
            support[name] = os.path.join(root, "support-" + name)
            with open(support[name], "wb") as f:
                f.write(data)
        capture_dir = tempfile.mkdtemp(dir=root)
        if os.geteuid() == 0:
            os.chown(capture_dir, sandbox.sandbox_uid(0), sandbox.sandbox_uid(0))
        total, slowest = 0.0, 0.0
        source = os.path.join(path, "source", assignment)
        for name in sorted(n for n in os.listdir(source) if n.endswith(".ipynb")):
            nb = nbformat.read(os.path.join(source, name), as_version=4)
            execution = execute.run_notebook(nb, support_files=support, seed=1, capture_dir=capture_dir,
                                             unsafe=unsafe, work_dir=root)
            if execution.events:
                raise RuntimeError(f"the reference run of {name} did not finish cleanly: {execution.events}")
            total += execution.seconds
            slowest = max([slowest, *execution.cell_seconds.values()])
    recorded = {"reference": {"notebook_seconds": round(total, 1), "slowest_cell_seconds": round(slowest, 1)},
                "multiple": multiple, **limits.derived_limits(total, slowest, multiple),
                "measured": datetime.date.today().isoformat(),
                "host": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                "command": f"python -m grader measure {assignment}"}
    os.makedirs(os.path.dirname(limits.limits_file(assignment)), exist_ok=True)
    with open(limits.limits_file(assignment), "w") as f:
        json.dump(recorded, f, indent=1)
        f.write("\n")
    return recorded
