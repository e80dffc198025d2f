"""Mutation testing of every assignment, and the solutions' agreement with reference_impl.

Every catalogued bug (assignments/<a>/bugs.py) must lose points and be named
in the feedback by its description (the grader finds it by running the same
catalogue's edit); every alternative correct implementation must get full
marks; the source notebook's own solutions must get full marks on several
secret seeds, which proves they give reference_impl's outputs (the verdicts
compare with reference_impl).
"""

import os

import pytest

from grader import assignment as assignments, check, mutation

ASSIGNMENTS = assignments.names()
MIN_BUGS, MIN_CORRECT = 8, 3


def table(name):
    assignment = assignments.load(name)
    bugs, correct = assignment.catalogue
    return assignment, mutation.definitions(assignment.notebook()), bugs, correct


def lost(results):
    return [grade_id for grade_id, (score, points, _) in results.items() if score < points]


def test_every_assignment_folder_is_an_assignment():
    folders = sorted(entry for entry in os.listdir(assignments.root())
                     if os.path.isdir(os.path.join(assignments.root(), entry)) and entry != "__pycache__")
    assert folders == ASSIGNMENTS
    assert {"attention", "elmo", "bert", "after_bert", "gpt", "longer_context"} <= set(ASSIGNMENTS)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_case_ids_are_declared_once_and_all_used(name):
    assert assignments.load(name).problems() == []


def test_an_unknown_or_unused_case_id_is_reported(tmp_path, monkeypatch):
    source = assignments.load("attention")
    folder = tmp_path / "attention"
    folder.mkdir()
    for entry in ("attention.ipynb", "reference.py", "bugs.py"):
        (folder / entry).write_bytes(open(os.path.join(source.folder, entry), "rb").read())
    inputs = open(os.path.join(source.folder, "inputs.py")).read()
    inputs = inputs.replace('"attention.causal": attention_causal,', '"attention.causal_rows": attention_causal,')
    (folder / "inputs.py").write_text(inputs)
    monkeypatch.setenv(assignments.ROOT_VARIABLE, str(tmp_path))
    problems = assignments.load("attention").problems()
    assert any("'attention.causal'" in p and "not declared" in p for p in problems), problems
    assert any("'attention.causal_rows'" in p and "no cell" in p for p in problems), problems
    with pytest.raises(ValueError, match="inconsistent"):
        assignments.load("attention").validate()


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_graded_function_has_enough_mutants(name):
    assignment, _, bugs, correct = table(name)
    graded = set().union(*(cell.functions for cell in mutation.graded_cells(assignment.notebook())))
    assert graded == set(bugs) == set(correct)
    for function in graded:
        assert len(bugs[function]) >= MIN_BUGS, function
        assert len(correct[function]) >= MIN_CORRECT, function


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_agree_with_the_reference(name, seed):
    assignment, code, _, _ = table(name)
    results = check.grade_code(assignment, code, seed=seed)
    assert results and not lost(results), results


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_bug_loses_points_and_is_named_in_the_feedback(name):
    assignment, code, bugs, _ = table(name)
    survivors, unnamed = [], {}
    for function, edits in bugs.items():
        for description, old, new in edits:
            results = check.grade_code(assignment, mutation.apply_bug(code, old, new), only=function)
            if not lost(results):
                survivors.append(f"{function}: {description}")
            messages = [m for _, _, cell_messages in results.values() for m in cell_messages]
            if not any("known bug: " in m and description in m for m in messages):
                unnamed[f"{function}: {description}"] = messages
    assert survivors == [], "mutation score below 100%"
    assert unnamed == {}, "catalogued bugs the feedback does not name"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_alternative_solutions_get_full_marks(name):
    assignment, code, _, correct = table(name)
    failures = {}
    for function, alternatives in correct.items():
        for description, definition in alternatives.items():
            results = check.grade_code(assignment, code + "\n\n" + definition, only=function)
            assert results, f"no graded cell captures {function}"
            if lost(results):
                failures[f"{function}: {description}"] = results
    assert failures == {}
