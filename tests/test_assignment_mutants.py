"""Mutation testing of every assignment, and the solutions' agreement with reference_impl.

Every listed bug must lose points; every alternative correct implementation
must get full marks; the source notebook's own solutions must get full marks
on several secret seeds, which proves they give reference_impl's outputs (the
verdicts compare with reference_impl).
"""

import os

import pytest

from grader import mutation

ASSIGNMENTS = sorted(name[:-3] for name in os.listdir(os.path.join(mutation.REPO, "assignments", "mutants"))
                     if name.endswith(".py") and not name.startswith("_"))
MIN_BUGS, MIN_CORRECT = 5, 2


def table(assignment):
    nb = mutation.source_notebook(assignment)
    bugs, correct = mutation.load_mutants(assignment)
    return nb, mutation.definitions(nb), bugs, correct


def lost(results):
    return [grade_id for grade_id, (score, points, _) in results.items() if score < points]


def test_every_assignment_has_mutants():
    sources = sorted(os.listdir(os.path.join(mutation.REPO, "assignments", "source")))
    assert sources == ASSIGNMENTS


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_graded_function_has_enough_mutants(assignment):
    nb, _, bugs, correct = table(assignment)
    graded = set().union(*(cell.functions for cell in mutation.graded_cells(nb)))
    assert graded == set(bugs) == set(correct)
    for function in graded:
        assert len(bugs[function]) >= MIN_BUGS, function
        assert len(correct[function]) >= MIN_CORRECT, function


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_agree_with_the_reference(assignment, seed):
    nb, code, _, _ = table(assignment)
    results = mutation.grade_code(nb, code, seed=seed)
    assert results and not lost(results), results


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_bug_loses_points(assignment):
    nb, code, bugs, _ = table(assignment)
    survivors = []
    for function, edits in bugs.items():
        for description, old, new in edits:
            results = mutation.grade_code(nb, mutation.apply_bug(code, old, new), only=function)
            if not lost(results):
                survivors.append(f"{function}: {description}")
    assert survivors == [], "mutation score below 100%"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_alternative_solutions_get_full_marks(assignment):
    nb, code, _, correct = table(assignment)
    failures = {}
    for function, alternatives in correct.items():
        for description, definition in alternatives.items():
            results = mutation.grade_code(nb, code + "\n\n" + definition, only=function)
            assert results, f"no graded cell captures {function}"
            if lost(results):
                failures[f"{function}: {description}"] = results
    assert failures == {}
