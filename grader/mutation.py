"""The source notebook's solution, as written or with a catalogued bug put in, run in this process.

An assignment's bug catalogue (`assignments/<a>/bugs.py`) lists each known
bug as a text edit of the solution. The grader runs the mutated solution on
the secret inputs a student got, so the feedback can name the bug the
student's outputs match; the mutation tests run it through the whole capture
and verdict path (`grader.check.grade_code`). This code is the staff's own, so
it runs here, outside the sandbox.

The notebook's definitions are its solution cells plus the locked cells whose
grade id is `imports` or starts with `given`; demonstration cells (training
runs, plots) are left out, so a mutant is run in well under a second.
"""

import contextlib
import functools
import os
import sys
from dataclasses import dataclass

from grader import assignment as assignments
from grader.runtime import grading_runtime


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
                                    {fn for _, fn in assignments.captures_in(cell.source)}))
    return cells


@contextlib.contextmanager
def grading_environment(assignment, capture_dir=None, seed=None):
    """What the sandbox gives a kernel: the runtime and the inputs importable by name,
    and (when given) a capture directory and a seed."""
    names = {"grading_runtime": grading_runtime,
             assignment.released_inputs_module: assignment.inputs}
    variables = {"GRADER_CAPTURE_DIR": capture_dir, "GRADER_SEED": None if seed is None else str(seed)}
    saved_modules = {name: sys.modules.get(name) for name in names}
    saved_variables = {name: os.environ.get(name) for name in variables}
    sys.modules.update(names)
    for name, value in variables.items():
        _set(os.environ, name, value)
    try:
        yield
    finally:
        for name, module in saved_modules.items():
            _set(sys.modules, name, module)
        for name, value in saved_variables.items():
            _set(os.environ, name, value)


def _set(mapping, key, value):
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def apply_bug(code, old, new):
    """`code` with the one occurrence of `old` replaced; an edit that misses is a staff error."""
    count = code.count(old)
    if count != 1:
        raise ValueError(f"mutant edit {old!r} matches {count} places in the definitions (needs 1)")
    return code.replace(old, new)


def run_definitions(assignment, code):
    """The namespace `code` (notebook definitions) defines, run as the notebook's kernel would."""
    namespace = {"__name__": "__student__"}
    with grading_environment(assignment):
        exec(compile(code, f"<{assignment.name} definitions>", "exec"), namespace)
    return namespace


@functools.cache
def mutant(assignment, function, index):
    """The namespace of the solution with bug `index` of `function` put in."""
    _, old, new = assignment.catalogue[0][function][index]
    return run_definitions(assignment, apply_bug(definitions(assignment.notebook()), old, new))


@functools.lru_cache(maxsize=16384)
def bug_outputs(assignment, case_id, function, seed, index):
    """What catalogued bug `index` of `function` gives on the case's secret inputs
    under `seed`: (outputs as {"call{i}_output{j}": array}, None), or (None, the error
    report, as the kernel writes it) when the mutant raises.

    Computed only when a student's outputs miss the reference, then kept, so the
    cases of one notebook, and notebooks graded again, reuse them.
    """
    fn = mutant(assignment, function, index)[function]
    try:
        with grading_environment(assignment):
            return grading_runtime.call_case(case_id, fn, seed, assignment.inputs.CASES), None
    except Exception as error:
        return None, grading_runtime.error_report(error)
