"""Secret inputs cannot be replayed: the public check's expected values never pass a graded case.

Every student holds the public expected values (public_checks.npz). A notebook
that writes them as its captures, whatever the grading runtime does, must get
zero on every case of every assignment: the grader draws each notebook's secret
seed so that no case expects its public check's outputs, whether its inputs repeat
the public ones or only its outputs do (a few discrete sizes, one parameter count).
"""

import nbformat
import numpy as np
import pytest

from grader import assignment, sandbox, submission, verdicts
from grader.runtime import grading_runtime

SECRET_SEEDS = 2  # the seed check itself is exercised below on seeds known to coincide


def public_expected(case_id):
    """What public_checks.npz holds for `case_id`: the reference on the public inputs."""
    a = assignment.of_case(case_id)
    calls = a.draw_calls(case_id, grading_runtime.PUBLIC_SEED)
    return assignment.outputs_of(a.references[a.case_functions[case_id]], calls)


def replay(tmp_path, case_id, seed):
    np.savez(tmp_path / f"{case_id}.npz", **public_expected(case_id))
    return verdicts.judge_case(case_id, str(tmp_path), seed)


@pytest.mark.parametrize("name", assignment.names())
def test_replaying_the_public_expected_values_scores_zero_on_every_case(tmp_path, name):
    cases = sorted(assignment.load(name).inputs.CASES)
    for case_id in cases:
        # The replay is a real attack: on the public inputs it would pass.
        assert replay(tmp_path, case_id, grading_runtime.PUBLIC_SEED).passed, case_id
    passed = []
    for _ in range(SECRET_SEEDS):
        seed = assignment.secret_seed(cases)
        passed += [(case_id, seed) for case_id in cases if replay(tmp_path, case_id, seed).passed]
    assert passed == []


def same_call(call, other):
    call, other = grading_runtime.flat_arguments(call), grading_runtime.flat_arguments(other)
    return call.keys() == other.keys() and all(
        np.shape(call[k]) == np.shape(other[k]) and np.array_equal(call[k], other[k]) for k in call)


def coinciding_seed(case_id):
    """A seed (below 100,000) under which `case_id` draws all of a public check's inputs."""
    a = assignment.of_case(case_id)
    public = a.draw_calls(case_id, grading_runtime.PUBLIC_SEED)
    return next(seed for seed in range(100_000)
                if all(same_call(*calls) for calls in zip(a.draw_calls(case_id, seed), public)))


def test_a_seed_that_draws_public_inputs_is_never_used(monkeypatch, tmp_path):
    case_id = "attention.causal_mask"  # its inputs are a few sizes: seeds that repeat them exist
    bad = coinciding_seed(case_id)
    assert replay(tmp_path, case_id, bad).passed  # what the check prevents
    draws = iter([bad, bad, 7])
    monkeypatch.setattr(assignment.secrets, "randbits", lambda bits: next(draws))
    assert not assignment.of_case(case_id).repeats_public_outputs(case_id, 7)
    assert assignment.secret_seed([case_id, "attention.no_mask"]) == 7


def test_a_seed_with_other_inputs_but_the_public_outputs_is_never_used(monkeypatch, tmp_path):
    """ALBERT's parameter count depends on the vocabulary and the positions only through
    (V + T) * E: a seed that draws another V and T with the public sum expects the public
    counts, though none of its inputs is the public one."""
    case_id = "after_bert.albert_counts"
    a = assignment.of_case(case_id)
    public = a.draw_calls(case_id, grading_runtime.PUBLIC_SEED)

    def same_counts_other_inputs(calls):
        return all(call["vocabulary_size"] != known["vocabulary_size"] and
                   call["vocabulary_size"] + call["max_sequence_length"] ==
                   known["vocabulary_size"] + known["max_sequence_length"] and
                   all(call[k] == known[k] for k in call if k not in ("vocabulary_size", "max_sequence_length"))
                   for call, known in zip(calls, public))

    bad = next(seed for seed in range(100_000) if same_counts_other_inputs(a.draw_calls(case_id, seed)))
    assert not any(same_call(*calls) for calls in zip(a.draw_calls(case_id, bad), public))
    assert replay(tmp_path, case_id, bad).passed  # the attack works on such a seed
    draws = iter([bad, 7])
    monkeypatch.setattr(assignment.secrets, "randbits", lambda bits: next(draws))
    assert assignment.secret_seed([case_id]) == 7
    assert not replay(tmp_path, case_id, 7).passed


def test_a_case_that_always_draws_the_public_inputs_is_refused(monkeypatch):
    case_id = "attention.causal_mask"
    monkeypatch.setattr(assignment.secrets, "randbits", lambda bits: coinciding_seed(case_id))
    with pytest.raises(RuntimeError, match="larger space"):
        assignment.secret_seed([case_id])


def test_the_grader_never_gives_a_notebook_such_a_seed(monkeypatch, tmp_path):
    attention = assignment.load("attention")
    nb = attention.notebook()
    nbformat.write(nb, tmp_path / "attention.ipynb")
    locked = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("locked")]
    job = submission.GradingJob(student="ada", assignment="attention", submitted_dir=str(tmp_path),
                                autograded_dir=str(tmp_path / "autograded"), limits=sandbox.Limits(), notebooks=[{
        "name": "attention",
        "trusted_cells": [{"name": c.metadata["nbgrader"]["grade_id"], "source": c.source,
                           "cell_type": c.cell_type, "nbgrader": dict(c.metadata["nbgrader"])} for c in locked],
        "graded_cells": [{"name": c.metadata["nbgrader"]["grade_id"], "points": c.metadata["nbgrader"]["points"]}
                         for c in locked if c.metadata["nbgrader"].get("grade")]}])
    draws = iter([coinciding_seed("attention.causal_mask"), 7])
    monkeypatch.setattr(assignment.secrets, "randbits", lambda bits: next(draws))
    assert submission.prepare_submission(job).prepared["attention"].seed == 7
