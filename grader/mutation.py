"""Mutation testing of an assignment's graded cells, for course staff.

A graded cell is only as good as the bugs it catches. For each graded
function, `assignments/mutants/<assignment>.py` lists plausible student bugs
(text edits of the solution) and alternative correct implementations. Each is
run through the grader's own capture and verdict path, in this process (the
code is the staff's own, so no sandbox is needed): a bug must lose points, an
alternative must get full marks.

The notebook's definitions are its solution cells plus the locked cells whose
grade id is `imports` or starts with `given`; demonstration cells (training
runs, plots) are left out, so a mutant is judged in well under a second.
"""

import contextlib
import importlib.util
import os
import re
import sys
import tempfile
from dataclasses import dataclass

import nbformat

from grader import verdicts
from grader.runtime import grading_runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURE = re.compile(r"""capture\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""")


@dataclass
class GradedCell:
    grade_id: str
    points: float
    source: str
    functions: set


def definitions(nb):
    """Source of the cells a function's behaviour depends on, in notebook order."""
    chunks = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", "")
        if cell.cell_type == "code" and (meta.get("solution") or grade_id == "imports"
                                         or grade_id.startswith("given")):
            chunks.append(cell.source)
    return "\n\n".join(chunks)


def graded_cells(nb):
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade"):
            cells.append(GradedCell(meta["grade_id"], float(meta.get("points", 0)), cell.source,
                                    {fn for _, fn in CAPTURE.findall(cell.source)}))
    return cells


@contextlib.contextmanager
def _grading_environment(capture_dir, seed):
    """What the sandbox gives a kernel: the runtime importable by name, a capture dir and seed."""
    saved = {k: os.environ.get(k) for k in ("GRADER_CAPTURE_DIR", "GRADER_SEED")}
    previous = sys.modules.get("grading_runtime")
    os.environ.update(GRADER_CAPTURE_DIR=capture_dir, GRADER_SEED=str(seed))
    sys.modules["grading_runtime"] = grading_runtime
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if previous is None:
            sys.modules.pop("grading_runtime", None)
        else:
            sys.modules["grading_runtime"] = previous


def grade_code(nb, code, seed=20251123, only=None):
    """{grade_id: (score, points, messages)} for `code` (definitions) run against the graded cells.

    `only`, a function name, restricts grading to the cells that capture it.
    """
    results = {}
    with tempfile.TemporaryDirectory() as capture_dir, _grading_environment(capture_dir, seed):
        namespace = {"__name__": "__student__"}
        exec(compile(code, "<definitions>", "exec"), namespace)
        for cell in graded_cells(nb):
            if only is not None and only not in cell.functions:
                continue
            for case_id, fn in CAPTURE.findall(cell.source):
                try:
                    grading_runtime.capture(case_id, namespace[fn])
                except Exception:  # recorded in <case>.error.txt, as in the sandbox
                    pass
            verdict = verdicts.judge_cell(cell.grade_id, cell.points, cell.source, capture_dir, seed)
            results[cell.grade_id] = (verdict.score, verdict.points,
                                      [case["message"] for case in verdict.cases])
    return results


def apply_bug(code, old, new):
    """`code` with the one occurrence of `old` replaced; an edit that misses is a staff error."""
    count = code.count(old)
    if count != 1:
        raise ValueError(f"mutant edit {old!r} matches {count} places in the definitions (needs 1)")
    return code.replace(old, new)


def load_mutants(assignment):
    """The BUGS and CORRECT tables of assignments/mutants/<assignment>.py."""
    path = os.path.join(REPO, "assignments", "mutants", f"{assignment}.py")
    spec = importlib.util.spec_from_file_location(f"mutants_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BUGS, module.CORRECT


def source_notebook(assignment):
    """The assignment's one source notebook, `assignments/source/<a>/<a>.ipynb`."""
    path = os.path.join(REPO, "assignments", "source", assignment, f"{assignment}.ipynb")
    return nbformat.read(path, as_version=4)
