"""`python -m grader new-assignment NAME`: a new assignment folder to start from.

It holds a skeleton of everything an assignment needs, around one example
function (`softmax`): the nbgrader source notebook (an imports cell, a
solution cell whose solution region is left for staff to write, a local check
and a graded cell calling capture), `inputs.py` with one case, `reference.py`
and a bug catalogue with one bug and one alternative solution. Nothing outside
the folder changes: assignments are discovered by their folder.
"""

import os
import re

import nbformat

from grader import assignment as assignments

NAME = re.compile(r"[a-z][a-z0-9_]*")

INPUTS = '''"""Graded inputs of the {name} assignment (drawn fresh from a seed at grading time).

CASES declares every case id once: case id -> a function of a numpy Generator
returning the keyword arguments of each call. Draw sizes and values from
ranges wide enough that the public check's inputs tell nothing about the
secret ones.
"""


def softmax_scores(rng):
    rows, width = int(rng.integers(2, 6)), int(rng.integers(3, 9))
    return [dict(scores=(3 * rng.standard_normal((rows, width))).astype("float32"))]


CASES = {{
    "{name}.softmax": softmax_scores,
}}
'''

REFERENCE = '''"""References of the {name} assignment (trusted: never released).

REFERENCES: graded function -> the reference, called with the same keyword
arguments, returning a tuple of arrays. Build them on reference_impl.
"""

from keras import ops

from grader.assignment import numpy_outputs


def softmax(scores):
    return numpy_outputs(ops.softmax(scores, axis=-1))


REFERENCES = {{
    "softmax": softmax,
}}
'''

BUGS = '''"""Known bugs and alternative correct solutions for the {name} assignment.

BUGS: graded function -> [(what the student got wrong, text in the solution, replacement)].
The feedback names a bug when a student's outputs match the solution with that
edit applied. CORRECT: graded function -> {{how it differs: a whole correct definition}}.
The tests ask for at least 8 bugs and 3 alternatives per graded function.
"""

BUGS = {{
    "softmax": [
        ("normalised over the first axis instead of the last",
         "ops.sum(exponentials, axis=-1, keepdims=True)", "ops.sum(exponentials, axis=0, keepdims=True)"),
    ],
}}

CORRECT = {{
    "softmax": {{
        "keras.ops.softmax": \'\'\'
def softmax(scores):
    return ops.softmax(scores, axis=-1)
\'\'\',
    }},
}}
'''

SOLUTION_STUB = '''def softmax(scores):
    """Probabilities over the last axis of `scores`."""
    ### BEGIN SOLUTION
    raise NotImplementedError("the instructors' solution goes here")
    ### END SOLUTION'''


def _cell(kind, source, grade_id, solution=False, grade=False, points=None):
    cell = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source)
    cell.metadata["nbgrader"] = {"grade": grade, "grade_id": grade_id, "locked": not solution,
                                 "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        cell.metadata["nbgrader"]["points"] = points
    return cell


def notebook(name):
    nb = nbformat.v4.new_notebook()
    nb.metadata.update(kernelspec={"display_name": "Python 3", "language": "python", "name": "python3"},
                       language_info={"name": "python"})
    nb.cells = [
        _cell("markdown", f"# {name}\n\nWhat this assignment teaches, in a paragraph.", "intro"),
        _cell("code", "import numpy as np\nimport keras\nfrom keras import ops\n\n"
                      "from grading_runtime import capture, local_check", "imports"),
        _cell("markdown", "## 1. Softmax\n\nWrite `softmax(scores)`: probabilities over the last "
                          "axis, computed stably (subtract the maximum first).", "softmax_text"),
        _cell("code", SOLUTION_STUB, "softmax", solution=True),
        _cell("code", "# Local check (public inputs): run it as often as you like.\n"
                      f'local_check("{name}.softmax", softmax)', "softmax_local_check"),
        _cell("code", f'# Graded: rows of different widths.\ncapture("{name}.softmax", softmax)',
              "softmax_test", grade=True, points=2),
    ]
    return nb


def new_assignment(name):
    """Create `<assignments root>/<name>/`; returns its path."""
    if not NAME.fullmatch(name):
        raise ValueError(f"assignment name {name!r}: use lower-case letters, digits and '_', "
                         "starting with a letter (it becomes a module name and the case id prefix)")
    folder = os.path.join(assignments.root(), name)
    if os.path.exists(folder):
        raise FileExistsError(f"{folder} already exists; choose another name or remove it")
    os.makedirs(folder)
    nbformat.write(notebook(name), os.path.join(folder, f"{name}.ipynb"))
    for file_name, template in (("inputs.py", INPUTS), ("reference.py", REFERENCE), ("bugs.py", BUGS)):
        with open(os.path.join(folder, file_name), "w") as f:
            f.write(template.format(name=name))
    return folder
