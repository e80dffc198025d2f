"""Time limits that follow the work: each assignment's limits come from its measured reference run.

`python -m grader measure ASSIGNMENT` runs the assignment's solution notebook
in the sandbox, times it, and writes `assignments/<name>/grading.json`:

    {"reference": {"notebook_seconds": 7.1, "slowest_cell_seconds": 3.2},
     "multiple": 4, "cell_seconds": 30, "notebook_seconds": 60,
     "measured": "2026-12-02", "host": "...", "command": "python -m grader measure attention"}

The limits are `multiple` times the reference, but never under the floors
below (a kernel starts slower on a loaded machine than on an idle one), so an
idle or looping notebook holds a worker for about a minute, not fifteen. An
assignment without the file gets the sandbox's defaults (sized for any Keras
training).
"""

import datetime
import json
import math
import os
import platform
import tempfile
from dataclasses import replace

import nbformat

from grader import sandbox

MULTIPLE = 4
MIN_CELL_SECONDS = 30
MIN_NOTEBOOK_SECONDS = 60
LIMITS_FILE = "grading.json"


def limits_file(assignment):
    from grader.course.layout import REPO
    return os.path.join(REPO, "assignments", assignment, LIMITS_FILE)


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


def measure(assignment, multiple=MULTIPLE, unsafe=False):
    """Run the solution notebook(s) of `assignment` in the sandbox, write and return its grading.json."""
    from grader import course, execute

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
                "multiple": multiple, **derived_limits(total, slowest, multiple),
                "measured": datetime.date.today().isoformat(),
                "host": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
                "command": f"python -m grader measure {assignment}"}
    os.makedirs(os.path.dirname(limits_file(assignment)), exist_ok=True)
    with open(limits_file(assignment), "w") as f:
        json.dump(recorded, f, indent=1)
        f.write("\n")
    return recorded
