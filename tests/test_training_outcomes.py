"""Training outcomes: a graded cell scored on a held-out split the student never sees.

A small assignment made here declares one (`OUTCOMES` in its inputs.py, the split in `heldout/`).
Graded in the sandbox through the course commands: the held-out inputs reach the kernel, their
labels never do; the predictions are scored outside the sandbox, with credit in proportion
between chance and the stated score, and the feedback shows the figure. The bert assignment's
fine-tuning is graded this way; its full run is `python -m grader check bert`.
"""

import csv
import json
import os

import nbformat
import numpy as np
import pytest

from course_demo.sample_students import write_inbox
from grader import assignment as assignments, course, verdicts
from grader.runtime import grading_runtime

NAME = "negation"
CASE = f"{NAME}.heldout"
# Twenty held-out sentences: label 0 when negated. Four of them hold "maybe", which the partly
# right student below gets wrong: accuracy 0.8, so 3 * (0.8 - 0.5) / (0.9 - 0.5) = 2.25 points.
HELDOUT = [(f"the value {'maybe ' if i % 5 == 0 else ''}is {'not ' if i % 2 else ''}bound", 1 - i % 2)
           for i in range(20)]
OUTCOME = {"split": "test.tsv", "inputs": {"sentences": "sentence"}, "labels": "label",
           "metric": "accuracy", "chance": 0.5, "full_marks_at": 0.9}


def cell(kind, source, grade_id, **nbgrader):
    meta = {"grade": False, "grade_id": grade_id, "locked": True, "schema_version": 3, "solution": False,
            "task": False} | nbgrader
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata={"nbgrader": meta}, id=grade_id.replace("_", "-"))


SOLUTION = '''def predict(sentences):
    """1 for a sentence as written, 0 for a negated one."""
    ### BEGIN SOLUTION
    return np.array([0 if "not" in s.split() else 1 for s in sentences])
    ### END SOLUTION
'''
STUDENTS = {
    "partly_right": 'def predict(sentences):\n'
                    '    return np.array([1 - int("not" in s.split()) ^ int("maybe" in s.split()) for s in sentences])\n',
    # Looks for the labels wherever the kernel can read, and would copy them if it found them.
    "snooper": '''import glob, os
def predict(sentences):
    for path in glob.glob("**/*", recursive=True) + glob.glob("/tmp/**/*", recursive=True):
        try:
            text = open(path).read()
        except Exception:
            continue
        if text.startswith("sentence\\tlabel"):  # the held-out split's header
            found = dict(line.split("\\t") for line in text.splitlines()[1:])
            return np.array([int(found[s]) for s in sentences])
    return np.ones(len(sentences), dtype=int)
''',
}


@pytest.fixture
def negation(tmp_path, monkeypatch):
    """An assignments root holding the one assignment, named by GRADER_ASSIGNMENTS."""
    folder = tmp_path / "assignments" / NAME
    (folder / "heldout").mkdir(parents=True)
    with open(folder / "heldout" / "test.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["sentence", "label"])
        writer.writerows(HELDOUT)
    (folder / "inputs.py").write_text(f"CASES = {{}}\nOUTCOMES = {{{CASE!r}: {OUTCOME!r}}}\n")
    (folder / "reference.py").write_text("REFERENCES = {}\n")
    (folder / "bugs.py").write_text("BUGS = {}\nCORRECT = {}\n")
    nb = nbformat.v4.new_notebook(cells=[
        cell("code", "import numpy as np\nfrom grading_runtime import capture", "imports"),
        cell("code", SOLUTION, "predict", solution=True, locked=False),
        cell("code", f'capture("{CASE}", predict)', "predict_test", grade=True, points=3),
    ])
    nbformat.write(nb, folder / f"{NAME}.ipynb")
    monkeypatch.setenv(assignments.ROOT_VARIABLE, str(tmp_path / "assignments"))
    return assignments.load(NAME)


@pytest.mark.long  # three notebooks graded in the sandbox: `make test-long`
def test_an_outcome_is_graded_on_the_heldout_split_with_credit_in_proportion(negation, tmp_path):
    assert negation.problems() == []
    assert "heldout" not in negation.support_files()
    path = course.setup(str(tmp_path / "course"), assignments=[NAME])
    release_dir = course.release(path, NAME)
    assert not any("test" in name or "heldout" in name for name in os.listdir(release_dir))
    # What a kernel gets: the held-out inputs, never the labels.
    kernel = course.kernel_files(path, NAME)
    assert json.loads(kernel[CASE + grading_runtime.HELDOUT_SUFFIX]) == {"sentences": [s for s, _ in HELDOUT]}
    assert not any(b"label" in data for name, data in kernel.items() if not name.endswith(".py"))

    source = nbformat.read(os.path.join(path, "source", NAME, f"{NAME}.ipynb"), as_version=4)
    notebooks = {}
    for student, code in STUDENTS.items():
        nb = nbformat.read(os.path.join(release_dir, f"{NAME}.ipynb"), as_version=4)
        nb.cells[1].source = code
        notebooks[student] = nb
    notebooks["solution"] = source
    write_inbox(notebooks, str(tmp_path / "inbox"), notebook=f"{NAME}.ipynb")
    course.collect(path, NAME, str(tmp_path / "inbox"))
    results = {r["student"]: r for r in course.autograde(path, NAME, workers=1, progress=False)}
    message = {student: r["notebooks"][NAME]["cells"][0]["cases"][0]["message"] for student, r in results.items()}
    score = {student: r["score"] for student, r in results.items()}

    assert score["solution"] == 3 and "accuracy 1.000 on 20 held-out examples" in message["solution"]
    assert score["partly_right"] == 2.25, message["partly_right"]
    assert "accuracy 0.800" in message["partly_right"] and "75% of the points" in message["partly_right"]
    assert score["snooper"] == 0 and "accuracy 0.500" in message["snooper"]  # found no labels


def test_outside_grading_capture_states_the_terms_and_calls_nothing(negation, monkeypatch, capsys):
    monkeypatch.syspath_prepend(negation.folder)
    monkeypatch.setitem(__import__("sys").modules, f"{NAME}_inputs", negation.inputs)
    monkeypatch.delenv("GRADER_CAPTURE_DIR", raising=False)

    def never_called(sentences):
        raise AssertionError("called outside grading")

    grading_runtime.capture(CASE, never_called)
    assert "accuracy on a held-out split you never see; full marks from 0.9, none at or below 0.5" \
        in capsys.readouterr().out


def test_the_bert_fine_tuning_is_a_training_outcome():
    """Declared, readable, and left out of the public checks and of the in-process catalogue."""
    bert = assignments.load("bert")
    assert bert.captured["bert.polarity"] == "predict_polarity" and "bert.polarity" not in bert.case_functions
    inputs, labels = bert.heldout_split("bert.polarity")
    assert len(inputs["sentences"]) == len(labels) == 200 and labels.mean() == 0.5
    with open(os.path.join(bert.folder, "polarity_train.tsv")) as f, open(os.path.join(bert.folder, "polarity_dev.tsv")) as g:
        seen = {row["sentence"] for row in csv.DictReader(f, delimiter="\t")} | \
               {row["sentence"] for row in csv.DictReader(g, delimiter="\t")}
    assert not seen & set(inputs["sentences"])  # held out: in neither split the notebook reads


@pytest.mark.parametrize("accuracy, points", [(1.0, 3.0), (0.9, 3.0), (0.7, 1.5), (0.5, 0.0), (0.3, 0.0)])
def test_credit_is_in_proportion_between_chance_and_full_marks(negation, tmp_path, accuracy, points):
    labels = np.array([label for _, label in HELDOUT])
    predictions = labels.copy()
    predictions[: round((1 - accuracy) * len(labels))] ^= 1
    np.savez(tmp_path / f"{CASE}.npz", call0_output0=predictions)
    verdict = verdicts.judge_cell("predict_test", 3, f'capture("{CASE}", predict)', str(tmp_path), seed=1)
    assert verdict.score == points and f"accuracy {accuracy:.3f}" in verdict.cases[0]["message"]


def test_predictions_that_are_not_one_class_id_per_example_get_no_points_and_say_so(negation, tmp_path):
    np.savez(tmp_path / f"{CASE}.npz", call0_output0=np.full((len(HELDOUT), 2), 0.5))  # probabilities
    verdict = verdicts.judge_cell("predict_test", 3, f'capture("{CASE}", predict)', str(tmp_path), seed=1)
    assert verdict.score == 0 and "integers, shape (20,)" in verdict.cases[0]["message"]
