"""Written questions: nbgrader manually graded answer cells, graded in the formgrader's gradebook.

The attention notebook ends with a written question (a markdown answer cell worth
2 points, its model answer and rubric in the source notebook only). On a course
made by the kit, the sandboxed autograde leaves the answer for the formgrader
(flagged as needing a manual grade); the points an instructor gives there, through
nbgrader's gradebook as the formgrader's grade API does, add to the exported total.
The longer_context notebook ends with one too; every answer cell of every
assignment holds its model answer and rubric.
"""

import csv
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_demo.sample_students import write_inbox
from grader import assignment, course

ASSIGNMENT = "attention"
WRITTEN = "written_causal_mask"


def answer_cell(nb):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRITTEN)


@pytest.mark.slow
def test_written_answers_are_graded_in_the_formgrader_and_add_to_the_export(tmp_path):
    path = course.setup(str(tmp_path / "course"), assignments=[ASSIGNMENT])
    release_dir = course.release(path, ASSIGNMENT)
    nb = nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"), as_version=4)
    source = answer_cell(nb)
    released = answer_cell(nbformat.read(os.path.join(release_dir, "attention.ipynb"), as_version=4))
    assert source.cell_type == "markdown" and source.metadata.nbgrader["points"] == 2
    assert "Rubric" in source.source and released.source.strip() == "YOUR ANSWER HERE"

    answer_cell(nb).source = ("The mask hides every later position, so each position's prediction only uses "
                              "the tokens before it and all of them come out of one pass.")
    write_inbox({"ada": nb}, str(tmp_path / "inbox"))
    course.collect(path, ASSIGNMENT, str(tmp_path / "inbox"))
    [result] = course.autograde(path, ASSIGNMENT, workers=1, progress=False)
    assert result["score"] == result["max_score"] == 9  # the autograded cells

    with Gradebook(course.db_url(path)) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "ada")
        assert notebook.needs_manual_grade  # the formgrader lists it as waiting for a grade
        grade = gb.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, "ada")
        assert grade.max_score == 2 and grade.auto_score is None and grade.needs_manual_grade
        # what the formgrader's grade API (PUT /formgrader/api/grade/<id>) does with a manual score
        grade = gb.find_grade_by_id(grade.id)
        grade.manual_score = 1.5
        grade.needs_manual_grade = False
        gb.db.commit()
    with Gradebook(course.db_url(path)) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "ada")
        assert not notebook.needs_manual_grade, [(g.name, g.auto_score, g.manual_score, g.needs_manual_grade)
                                                 for g in notebook.grades]

    with open(course.export(path, ASSIGNMENT)) as f:
        [row] = [r for r in csv.DictReader(f) if r["student_id"] == "ada"]
    assert float(row["score"]) == 9 + 1.5 and float(row["max_score"]) == 9 + 2


def written_cells(name):
    return [c for c in assignment.load(name).notebook().cells
            if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")]


def test_the_attention_and_longer_context_notebooks_end_with_a_written_question():
    assert written_cells("attention") and written_cells("longer_context")


@pytest.mark.parametrize("name", assignment.names())
def test_every_written_answer_cell_holds_a_model_answer_and_a_rubric(name):
    """A written question's answer cell, in the source notebook: markdown, graded by hand (solution and
    grade set, points given), with the model answer and the rubric the formgrader shows."""
    for cell in written_cells(name):
        meta = cell.metadata.nbgrader
        assert meta["solution"] and meta["points"] > 0 and not meta["locked"]
        assert "**Model answer.**" in cell.source and "**Rubric" in cell.source
