"""Malformed and tampered submissions, before anything runs (no kernel: fast)."""

import json

import nbformat

from grader.submission import read_submission, restore_trusted_cells

LOCKED = [
    {"name": "given", "source": "import numpy as np", "cell_type": "code",
     "nbgrader": {"grade": False, "grade_id": "given", "locked": True, "solution": False}},
    {"name": "test", "source": "capture('attention.no_mask', f)", "cell_type": "code",
     "nbgrader": {"grade": True, "grade_id": "test", "locked": True, "points": 2, "solution": False}},
]


def cell(source, **nbgrader):
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": nbgrader} if nbgrader else {})


def test_old_format_is_converted_and_said(tmp_path):
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(
        cells=[nbformat.v3.new_code_cell("x = 1")])])
    nbformat.write(v3, str(tmp_path / "a.ipynb"), version=3)
    nb, problems = read_submission(str(tmp_path / "a.ipynb"))
    assert nb.nbformat == 4 and nb.cells[0].source == "x = 1"
    assert problems == ["the notebook was in the old format 3; it was converted"]


def test_invalid_missing_huge_and_swapped_kernel(tmp_path):
    (tmp_path / "bad.ipynb").write_text('{"cells": [ not json')
    assert "not a readable notebook" in read_submission(str(tmp_path / "bad.ipynb"))[1][0]
    (tmp_path / "shape.ipynb").write_text('{"cells": 3}')
    assert read_submission(str(tmp_path / "shape.ipynb"))[0] is None
    assert "missing" in read_submission(str(tmp_path / "none.ipynb"))[1][0]
    huge = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x" * (21 * 2**20))])
    (tmp_path / "huge.ipynb").write_text(json.dumps(huge))
    assert "larger than 20 MiB" in read_submission(str(tmp_path / "huge.ipynb"))[1][0]
    r = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "ir", "display_name": "R", "language": "R"}})
    nbformat.write(r, str(tmp_path / "r.ipynb"))
    assert "graded with Python 3" in read_submission(str(tmp_path / "r.ipynb"))[1][0]


def test_edited_deleted_duplicated_and_fake_locked_cells_are_restored():
    nb = nbformat.v4.new_notebook(cells=[
        cell("import numpy as np; np.allclose = lambda *a: True", grade_id="given", locked=True),
        cell("def f(): ...", grade_id="solution", solution=True),
        cell("import numpy as np", grade_id="given", locked=True),
        cell("print('tests passed')", grade_id="fake", grade=True, locked=True, points=50),
    ])
    problems = restore_trusted_cells(nb, LOCKED)
    names = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert names == ["given", "solution", None, "test"]
    assert nb.cells[0].source == "import numpy as np"
    assert nb.cells[3].source == LOCKED[1]["source"] and nb.cells[3].metadata.nbgrader["points"] == 2
    text = "\n".join(problems)
    assert "'given' was edited" in text and "appeared twice" in text
    assert "'test' was missing" in text and "'fake' claims to be a locked or graded cell" in text


def test_changed_points_are_put_back():
    nb = nbformat.v4.new_notebook(cells=[
        cell(LOCKED[0]["source"], **LOCKED[0]["nbgrader"]),
        cell(LOCKED[1]["source"], **{**LOCKED[1]["nbgrader"], "points": 100})])
    problems = restore_trusted_cells(nb, LOCKED)
    assert problems == ["the grading metadata of cell 'test' was edited; it was restored"]
    assert nb.cells[1].metadata.nbgrader["points"] == 2


ANSWER = {"name": "written", "source": "YOUR ANSWER HERE", "cell_type": "markdown", "answer": True,
          "nbgrader": {"grade": True, "grade_id": "written", "locked": False, "points": 3, "solution": True}}


def test_a_written_answer_is_kept_under_its_released_points():
    answer = nbformat.v4.new_markdown_cell("The mask hides later positions, so ...",
                                           metadata={"nbgrader": {**ANSWER["nbgrader"], "points": 30}})
    nb = nbformat.v4.new_notebook(cells=[cell(LOCKED[0]["source"], **LOCKED[0]["nbgrader"]), answer,
                                         cell(LOCKED[1]["source"], **LOCKED[1]["nbgrader"])])
    problems = restore_trusted_cells(nb, [LOCKED[0], ANSWER, LOCKED[1]])
    assert problems == ["the grading metadata of cell 'written' was edited; it was restored"]  # nothing else
    assert nb.cells[1].source == "The mask hides later positions, so ..."
    assert nb.cells[1].cell_type == "markdown" and nb.cells[1].metadata.nbgrader["points"] == 3
    del nb.cells[1]
    problems = restore_trusted_cells(nb, [LOCKED[0], ANSWER, LOCKED[1]])
    assert problems == ["answer cell 'written' was missing; it was put back empty"]
    assert nb.cells[1].source == "YOUR ANSWER HERE"
