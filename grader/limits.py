"""Time limits that follow the work: each assignment's limits come from its measured reference run.

`python -m grader measure ASSIGNMENT` (`grader.check.measure`) runs the
assignment's solution notebook in the sandbox, times it, and writes
`assignments/<name>/grading.json`:

    {"reference": {"notebook_seconds": 7.1, "slowest_cell_seconds": 3.2},
     "multiple": 4, "cell_seconds": 30, "notebook_seconds": 60,
     "measured": "2026-12-02", "host": "...", "command": "python -m grader measure attention"}

The limits are `multiple` times the reference, but never under the floors
below (a kernel starts slower on a loaded machine than on an idle one), so an
idle or looping notebook holds a worker for about a minute, not fifteen. An
assignment without the file gets the sandbox's defaults (sized for any Keras
training).
"""

import json
import math
import os
from dataclasses import replace

from grader import assignment as assignments, sandbox

MULTIPLE = 4
MIN_CELL_SECONDS = 30
MIN_NOTEBOOK_SECONDS = 60
LIMITS_FILE = "grading.json"


def limits_file(assignment):
    return os.path.join(assignments.root(), assignment, LIMITS_FILE)


def assignment_limits(assignment, base=sandbox.Limits()):
    """`base` with the cell and notebook time limits recorded for `assignment`, if any."""
    path = limits_file(assignment)
    if not os.path.isfile(path):
        return base
    with open(path) as f:
        recorded = json.load(f)
    return replace(base, cell_seconds=int(recorded["cell_seconds"]),
                   notebook_seconds=int(recorded["notebook_seconds"]))


def derived_limits(notebook_seconds, slowest_cell_seconds, multiple=MULTIPLE):
    return {"cell_seconds": max(MIN_CELL_SECONDS, math.ceil(multiple * slowest_cell_seconds)),
            "notebook_seconds": max(MIN_NOTEBOOK_SECONDS, math.ceil(multiple * notebook_seconds))}
