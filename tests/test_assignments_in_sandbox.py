"""Every assignment through the real workflow: its source notebook graded in the
sandbox gets full marks, its released notebook gets zero without crashing."""

import os

import nbformat
import pytest

from grader import course
from tests.test_assignment_mutants import ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_gets_full_marks_and_release_gets_zero(assignment, tmp_path):
    path = course.setup(str(tmp_path / "course"), assignments=[assignment])
    release_dir = course.release(path, assignment)
    name = f"{assignment}.ipynb"
    notebooks = {"solution": os.path.join(path, "source", assignment, name),
                 "released": os.path.join(release_dir, name)}
    inbox = tmp_path / "inbox"
    for student, notebook in notebooks.items():
        (inbox / student).mkdir(parents=True)
        nbformat.write(nbformat.read(notebook, as_version=4), str(inbox / student / name))
    course.collect(path, assignment, str(inbox))
    results = {r["student"]: r for r in course.autograde(path, assignment, workers=2, progress=False)}
    solution, released = results["solution"], results["released"]
    assert solution["max_score"] > 0
    assert solution["score"] == solution["max_score"], solution["notebooks"]
    assert released["score"] == 0
    assert released["notebooks"][assignment]["cells"], "the stub's graded cells were not judged"
