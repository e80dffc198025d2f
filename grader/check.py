"""Quality checks of assignments, for course staff (`python -m grader check [ASSIGNMENT...]`).

* `problems`: the notebook, inputs.py, reference.py and bugs.py agree (every
  case id used is declared and every declared one used; every graded function
  has a reference and a bug catalogue).
* `grade_code`: a notebook's definitions (the solution, a mutant or an
  alternative) graded through the capture and verdict path, in this process.
* `check_catalogue`: the solution, every catalogued bug and every alternative
  graded that way on several secret seeds: the solution and the alternatives
  get full marks on each, every bug loses the same cells on each (a grade that
  does not depend on the seed) and is named in the feedback. The tests run it
  on a few seeds; `python -m grader check --seeds 20` on as many as asked,
  under the grader's Keras backend.
* `grade_in_sandbox`: the assignment set up in a fresh course, released, and
  two submissions graded one at a time in the real sandbox with the course
  commands: the source notebook (full marks expected) and the released stub
  (zero expected, no crash). Each notebook runs its training demos in full, a
  few CPU-minutes for all the assignments, so this is run after editing a
  notebook (`make check-assignments`), not in `make test`.
* `measure`: the solution's run in the sandbox, timed, and the assignment's
  time limits derived from it (`grader.limits`) written to its grading.json.
"""

import contextlib
import datetime
import io
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import keras
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
    # What the capture prints for students ("outputs recorded ...") would bury the staff's tables.
    with tempfile.TemporaryDirectory() as capture_dir, contextlib.redirect_stdout(io.StringIO()), \
            mutation.grading_environment(assignment, capture_dir, seed):
        namespace = {"__name__": "__student__"}
        exec(compile(code, "<definitions>", "exec"), namespace)
        for cell in mutation.graded_cells(nb):
            if only is not None and only not in cell.functions:
                continue
            if any(case_id in assignment.outcomes for case_id, _ in assignments.captures_in(cell.source)):
                continue  # a training outcome needs the notebook's training run: graded in the sandbox only
            for case_id, fn in assignments.captures_in(cell.source):
                try:
                    grading_runtime.capture(case_id, namespace[fn])
                except Exception:  # recorded in <case>.error.txt, as in the sandbox
                    pass
            verdict = verdicts.judge_cell(cell.grade_id, cell.points, cell.source, capture_dir, seed)
            results[cell.grade_id] = (verdict.score, verdict.points,
                                      [case["message"] for case in verdict.cases])
    return results


def fairness_seeds(count):
    """`count` secret seeds, far apart (the same ones on every run, so a finding can be replayed)."""
    return [7 + 1_000_003 * i for i in range(count)]


def lost_cells(results):
    return frozenset(grade_id for grade_id, (score, points, _) in results.items() if score < points)


@dataclass
class CatalogueCheck:
    """What `check_catalogue` found; each field lists what is wrong, so all empty means right."""

    assignment: str
    seeds: list
    bugs: int = 0
    alternatives: int = 0
    solution_loses: dict = field(default_factory=dict)   # seed -> cells the solution loses
    unfair: dict = field(default_factory=dict)           # bug -> "no points lost" or {seed: other cells}
    unnamed: list = field(default_factory=list)          # bugs the feedback does not name
    alternatives_lose: dict = field(default_factory=dict)  # alternative -> (seed, cells it loses)
    seconds: float = 0.0

    @property
    def problems(self):
        return {name: value for name, value in (("solution loses points", self.solution_loses),
                                                ("bugs graded unfairly", self.unfair),
                                                ("bugs not named", self.unnamed),
                                                ("alternatives lose points", self.alternatives_lose)) if value}


def check_catalogue(name, seeds):
    """Grade the solution, each catalogued bug and each alternative of assignment `name` on `seeds`.

    A bug must lose the same non-empty set of cells on every seed (two students
    with the same bug get the same grade), and be named in the feedback ("known
    bug: <description>", checked on the first seed).
    """
    started = time.perf_counter()
    assignment = assignments.load(name)
    code = mutation.definitions(assignment.notebook())
    bugs, correct = assignment.catalogue
    found = CatalogueCheck(name, list(seeds))
    for seed in seeds:
        if cells := lost_cells(grade_code(assignment, code, seed=seed)):
            found.solution_loses[seed] = sorted(cells)
    for function, edits in bugs.items():
        for description, old, new in edits:
            found.bugs += 1
            mutated = mutation.apply_bug(code, old, new)
            per_seed = {seed: grade_code(assignment, mutated, seed=seed, only=function) for seed in seeds}
            first = lost_cells(per_seed[seeds[0]])
            if not first:
                found.unfair[f"{function}: {description}"] = "no points lost"
            elif any(lost_cells(results) != first for results in per_seed.values()):
                found.unfair[f"{function}: {description}"] = {
                    seed: sorted(lost_cells(results)) for seed, results in per_seed.items()}
            messages = [m for _, _, cell_messages in per_seed[seeds[0]].values() for m in cell_messages]
            if not any("known bug: " in m and description in m for m in messages):
                found.unnamed.append(f"{function}: {description}")
        for description, definition in correct[function].items():
            found.alternatives += 1
            for seed in seeds:
                results = grade_code(assignment, code + "\n\n" + definition, seed=seed, only=function)
                if not results:
                    found.alternatives_lose[f"{function} (correct): {description}"] = "no graded cell"
                    break
                if cells := lost_cells(results):
                    found.alternatives_lose[f"{function} (correct): {description}"] = (seed, sorted(cells))
                    break
    found.seconds = time.perf_counter() - started
    return found


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


def check(names=None, console=None, seeds=0, in_sandbox=True):
    """Check each assignment (all by default); returns the names that failed, printing tables.

    `in_sandbox`: grade the source and the release in the real sandbox;
    `seeds`: also `check_catalogue` on that many secret seeds.
    """
    console = console or Console()
    names = names or assignments.names()
    machine = f"{os.cpu_count()} cores, {platform.node()}, {time.strftime('%Y-%m-%d')}"
    table = Table(title=f"Grading in the sandbox ({machine})")
    for column in ("assignment", "solution score", "solution s", "released score", "released s", "total s"):
        table.add_column(column, justify="left" if column == "assignment" else "right")
    catalogue = Table(title=f"Known bugs and alternatives on {seeds} secret seeds "
                            f"({keras.backend.backend()}, {machine})")
    for column in ("assignment", "bugs", "alternatives", "problems", "s"):
        catalogue.add_column(column, justify="left" if column in ("assignment", "problems") else "right")
    wrong = []
    for name in names:
        problems = assignments.load(name).problems()
        if problems:
            console.print(f"[red]{name}: inconsistent[/red]\n  " + "\n  ".join(problems))
            wrong.append(name)
            continue
        if seeds:
            found = check_catalogue(name, fairness_seeds(seeds))
            catalogue.add_row(name, str(found.bugs), str(found.alternatives),
                              json.dumps(found.problems, default=str) if found.problems else "none",
                              f"{found.seconds:.0f}")
            if found.problems:
                wrong.append(name)
        if not in_sandbox:
            continue
        root = tempfile.mkdtemp(prefix=f"grade-{name}-", dir=os.path.expanduser("~"))
        try:
            results, total = grade_in_sandbox(name, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if not graded_right(name, results) and name not in wrong:
            wrong.append(name)
        solution, released = results["solution"], results["released"]
        table.add_row(name, f"{solution['score']:g} / {solution['max_score']:g}",
                      f"{solution['notebooks'][name]['seconds']:.0f}",
                      f"{released['score']:g} / {released['max_score']:g}",
                      f"{released['notebooks'][name]['seconds']:.0f}", f"{total:.0f}")
    if seeds:
        console.print(catalogue)
    if in_sandbox:
        console.print(table)
    return wrong


def measure(assignment, multiple=limits.MULTIPLE, unsafe=False):
    """Run the solution notebook(s) of `assignment` in the sandbox, write and return its grading.json."""
    with tempfile.TemporaryDirectory(prefix="grader-measure-") as root:
        os.chmod(root, 0o755)  # the sandbox user reaches the support files
        path = course.setup(os.path.join(root, "course"), assignments=[assignment])
        course.generate(path, assignment)
        support = {}
        for name, data in course.kernel_files(path, assignment).items():
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
