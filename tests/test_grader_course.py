"""The course workflow end to end: setup, release, collect, autograde, feedback, export."""

import csv
import json
import os

import nbformat
import pytest
from nbgrader.api import Gradebook

from course_demo.sample_students import (CAUSAL_ALWAYS_EQUAL, CAUSAL_OFF_BY_ONE, HEADS, SDPA,
                                         SDPA_MASK_AFTER_SOFTMAX, student_notebook, tamper)
from grader import course
from grader.__main__ import main


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    path = course.setup(str(root / "course"))
    release_dir = course.release(path, "attention")
    release_nb = nbformat.read(os.path.join(release_dir, "attention.ipynb"), as_version=4)
    source_nb = nbformat.read(os.path.join(path, "source", "attention", "attention.ipynb"), as_version=4)
    inbox = root / "inbox"
    submissions = {
        "correct": source_nb,
        "stub": release_nb,
        "partial": student_notebook(release_nb, {"sdpa": SDPA_MASK_AFTER_SOFTMAX, "causal": CAUSAL_OFF_BY_ONE,
                                                  "heads": HEADS}),
        "tamper": tamper(student_notebook(release_nb, {"sdpa": SDPA, "causal": CAUSAL_ALWAYS_EQUAL,
                                                       "heads": HEADS})),
    }
    for student, nb in submissions.items():
        (inbox / student).mkdir(parents=True)
        nbformat.write(nb, str(inbox / student / "attention.ipynb"))
    (inbox / "broken").mkdir()
    (inbox / "broken" / "attention.ipynb").write_text('{"cells": [ this is not json')
    course.collect(path, "attention", str(inbox))
    results = course.autograde(path, "attention", workers=2, progress=False)
    return path, {r["student"]: r for r in results}


def messages(result):
    nb = result["notebooks"]["attention"]
    return nb["problems"] + nb["events"] + [c["message"] for cell in nb["cells"] for c in cell["cases"]]


def cell_scores(result):
    return {c["grade_id"]: c["score"] for c in result["notebooks"]["attention"]["cells"]}


def test_correct_submission_gets_full_marks(graded):
    _, results = graded
    assert results["correct"]["score"] == results["correct"]["max_score"] == 9


def test_released_stub_gets_zero_without_crashing(graded):
    _, results = graded
    assert results["stub"]["score"] == 0
    assert any("NotImplementedError" in m for m in messages(results["stub"]))


def test_partial_submission_gets_matching_partial_credit_and_names_the_bugs(graded):
    _, results = graded
    # Mask applied after the softmax: right without a mask, wrong with one.
    assert cell_scores(results["partial"]) == {
        "sdpa_no_mask_test": 2, "sdpa_padding_test": 0, "causal_mask_test": 0,
        "causal_attention_test": 0, "split_heads_test": 1, "merge_heads_test": 1}
    assert results["partial"]["score"] == 4
    text = "\n".join(messages(results["partial"]))
    assert "off by one: a query cannot see its own position" in text
    assert "mask applied after the softmax" in text


def test_tampering_earns_only_honest_work(graded):
    _, results = graded
    result = results["tamper"]
    # Restored test cells grade the honest sdpa and heads; the always-equal mask and the
    # forged pickle capture earn nothing; inflated points are ignored.
    assert cell_scores(result) == {"sdpa_no_mask_test": 2, "sdpa_padding_test": 2, "causal_mask_test": 0,
                                   "causal_attention_test": 1, "split_heads_test": 1, "merge_heads_test": 1}
    text = "\n".join(messages(result))
    assert "locked cell 'sdpa_no_mask_test' was edited" in text
    assert "'merge_heads_test' was missing" in text and "appeared twice" in text


def test_malformed_notebook_gets_a_message_and_the_run_goes_on(graded):
    _, results = graded
    assert results["broken"]["score"] == 0
    assert any("not a readable notebook" in m for m in messages(results["broken"]))


def test_gradebook_holds_the_scores(graded):
    path, results = graded
    with Gradebook(course.db_url(path)) as gb:
        for student, result in results.items():
            assert gb.find_submission("attention", student).score == result["score"]


def test_rerun_skips_finished_work_and_keeps_grades(graded):
    path, results = graded
    again = course.autograde(path, "attention", workers=2, progress=False)
    assert {r["student"]: r["score"] for r in again} == {s: r["score"] for s, r in results.items()}


def test_exports_and_feedback(graded):
    path, results = graded
    main(["export", path, "attention"])
    main(["feedback", path, "attention"])
    csv_path = os.path.join(path, "exports", "grades.csv")
    with open(csv_path) as f:
        rows = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert rows == {s: r["score"] for s, r in results.items()}
    with open(os.path.join(path, "exports", "gradescope", "partial", "results.json")) as f:
        gradescope = json.load(f)
    assert gradescope["score"] == 4 and len(gradescope["tests"]) == 6
    assert {"name", "score", "max_score", "visibility", "output"} <= set(gradescope["tests"][0])
    with open(os.path.join(path, "feedback", "partial", "attention", "attention.html")) as f:
        assert "off by one" in f.read()
