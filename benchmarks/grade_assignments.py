"""Every assignment graded in the real sandbox: right grades, and how long it takes.

For each assignment: set up a course, release it, and grade two submissions
one at a time (one worker, so each notebook has the machine to itself): the
source notebook (full marks expected) and the released stub (zero expected,
no crash). Prints a table of scores and seconds spent in the sandbox per
notebook, and exits with status 1 naming any assignment that grades wrong.

Each notebook runs its training demos in full, a few CPU-minutes for all five
together, so this check is `make check-assignments`, run after editing a
notebook, rather than part of `make test`; the tests check every assignment's
grading in-process (tests/test_assignment_mutants.py) and the sandboxed
workflow on the attention assignment (tests/test_grader_course.py).

Usage: python -m benchmarks.grade_assignments [assignment ...]
"""

import argparse
import os
import platform
import shutil
import tempfile
import time

import nbformat
from rich.console import Console
from rich.table import Table

from grader import course

SOURCES = os.path.join(course.REPO, "assignments", "source")


def grade_one(assignment, root):
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=sorted(os.listdir(SOURCES)))
    args = parser.parse_args(argv)
    table = Table(title=f"Grading in the sandbox ({os.cpu_count()} cores, {platform.node()}, "
                        f"{time.strftime('%Y-%m-%d')})")
    for column in ("assignment", "solution score", "solution s", "released score", "released s", "total s"):
        table.add_column(column, justify="left" if column == "assignment" else "right")
    wrong = []
    for assignment in args.assignments:
        root = tempfile.mkdtemp(prefix=f"grade-{assignment}-", dir=os.path.expanduser("~"))
        try:
            results, total = grade_one(assignment, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        solution, released = results["solution"], results["released"]
        if not (0 < solution["score"] == solution["max_score"] and released["score"] == 0
                and released["notebooks"][assignment]["cells"]):
            wrong.append(assignment)
        table.add_row(assignment, f"{solution['score']:g} / {solution['max_score']:g}",
                      f"{solution['notebooks'][assignment]['seconds']:.0f}",
                      f"{released['score']:g} / {released['max_score']:g}",
                      f"{released['notebooks'][assignment]['seconds']:.0f}", f"{total:.0f}")
    Console().print(table)
    if wrong:
        raise SystemExit(f"graded wrong (source not full marks, or release not zero): {', '.join(wrong)}")


if __name__ == "__main__":
    main()
