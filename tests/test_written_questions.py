"""Written questions: nbgrader manually graded answer cells, graded in the formgrader's gradebook.

Every notebook has a written question: a markdown answer cell worth points, its model answer and
rubric in the source notebook only. One course made by the kit holds every assignment. Attention's
submission goes the whole way: the sandboxed autograde leaves the answer for the formgrader
(flagged as needing a manual grade). The other assignments' submissions are added to the
gradebook as the grader adds one, without running their notebooks (their training demos take
minutes; their autograded cells count zero). For every assignment, the written answer gets manual
points through nbgrader's gradebook, as the formgrader's grade API does, and nbgrader's export
adds them to the total.
"""

import csv
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_demo.sample_students import write_inbox
from grader import assignment as assignments, course

GRADED_END_TO_END = "attention"  # its autograded cells: 12 points


def written_cells(nb):
    """The manually graded answer cells: markdown, graded, with a solution region."""
    return [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")
            and c.metadata.nbgrader.get("solution")]


def read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.long  # a whole course graded in the sandbox: `make test-long`
def test_written_answers_are_graded_in_the_formgrader_and_add_to_the_export(tmp_path):
    names = assignments.names()
    path = course.setup(str(tmp_path / "course"), assignments=names)
    written, autograded_points, manual = {}, {}, {}
    for name in names:
        release_dir = course.release(path, name)
        source = read(os.path.join(path, "source", name, f"{name}.ipynb"))
        released = read(os.path.join(release_dir, f"{name}.ipynb"))
        cells = written_cells(source)
        assert cells, f"{name}.ipynb has no written question"
        for cell, released_cell in zip(cells, written_cells(released), strict=True):
            assert cell.metadata.nbgrader["points"] > 0 and "Rubric" in cell.source, name
            assert released_cell.source.strip() == "YOUR ANSWER HERE", name
        written[name] = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader["points"] for c in cells}
        autograded_points[name] = sum(c.metadata.nbgrader["points"] for c in source.cells
                                      if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade"))

    nb = read(os.path.join(path, "source", GRADED_END_TO_END, f"{GRADED_END_TO_END}.ipynb"))
    for cell in written_cells(nb):
        cell.source = ("The mask hides every later position, so each position's prediction only uses "
                       "the tokens before it and all of them come out of one pass.")
    write_inbox({"ada": nb}, str(tmp_path / "inbox"))
    course.collect(path, GRADED_END_TO_END, str(tmp_path / "inbox"))
    [result] = course.autograde(path, GRADED_END_TO_END, workers=1, progress=False)
    assert result["score"] == result["max_score"] == autograded_points[GRADED_END_TO_END] == 12

    with Gradebook(course.db_url(path)) as gb:
        for name in names:
            if name != GRADED_END_TO_END:  # a submission, added as the grader adds one (record_grades)
                gb.add_submission(name, "ada")
            notebook = gb.find_submission_notebook(name, name, "ada")
            assert notebook.needs_manual_grade, name  # the formgrader lists it as waiting for a grade
            for grade_id, points in written[name].items():
                grade = gb.find_grade(grade_id, name, name, "ada")
                assert grade.max_score == points and grade.auto_score is None and grade.needs_manual_grade
                # what the formgrader's grade API (PUT /formgrader/api/grade/<id>) does with a manual score
                grade = gb.find_grade_by_id(grade.id)
                grade.manual_score = points - 0.5
                grade.needs_manual_grade = False
                manual[name] = manual.get(name, 0) + points - 0.5
        gb.db.commit()
    with Gradebook(course.db_url(path)) as gb:  # the autograded notebook waits for nothing more
        notebook = gb.find_submission_notebook(GRADED_END_TO_END, GRADED_END_TO_END, "ada")
        assert not notebook.needs_manual_grade, [(g.name, g.auto_score, g.manual_score, g.needs_manual_grade)
                                                 for g in notebook.grades]

    with open(course.export(path, GRADED_END_TO_END)) as f:
        rows = {r["assignment"]: r for r in csv.DictReader(f) if r["student_id"] == "ada"}
    for name in names:
        earned = autograded_points[name] if name == GRADED_END_TO_END else 0  # the others were not autograded
        assert float(rows[name]["score"]) == earned + manual[name], name
        assert float(rows[name]["max_score"]) == autograded_points[name] + sum(written[name].values()), name


def test_every_notebook_has_a_written_question():
    assert all(written_cells(assignments.load(name).notebook()) for name in assignments.names())


@pytest.mark.parametrize("name", assignments.names())
def test_every_written_answer_cell_holds_a_model_answer_and_a_rubric(name):
    """A written question's answer cell, in the source notebook: markdown, graded by hand (solution and
    grade set, points given), with the model answer and the rubric the formgrader shows."""
    for cell in written_cells(assignments.load(name).notebook()):
        meta = cell.metadata.nbgrader
        assert meta["solution"] and meta["points"] > 0 and not meta["locked"]
        assert "**Model answer.**" in cell.source and "**Rubric" in cell.source
