"""Mutation testing of every assignment, and the solutions' agreement with reference_impl.

Every catalogued bug (assignments/<a>/bugs.py) must lose the same points on
every secret seed (two students with the same bug get the same grade) and be
named in the feedback by its description (the grader finds it by running the
same catalogue's edit); every alternative correct implementation must get full
marks; the source notebook's own solutions must get full marks on several
secret seeds, which proves they give reference_impl's outputs (the verdicts
compare with reference_impl). All of it is `grader.check.check_catalogue`,
under TensorFlow here and under JAX through `python -m grader check`.
"""

import os
import shutil
import subprocess
import sys

import pytest

from grader import assignment as assignments, check, mutation

ASSIGNMENTS = assignments.names()
MIN_BUGS, MIN_CORRECT = 8, 3
SEEDS = 1  # secret seeds per catalogue check here; `make check-assignments` runs 20 on both backends
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def table(name):
    assignment = assignments.load(name)
    bugs, correct = assignment.catalogue
    return assignment, mutation.definitions(assignment.notebook()), bugs, correct


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
    graded = set(assignment.case_functions.values())  # training outcomes are graded on a held-out split
    assert graded == set(bugs) == set(correct)
    for function in graded:
        assert len(bugs[function]) >= MIN_BUGS, function
        assert len(correct[function]) >= MIN_CORRECT, function


@pytest.mark.backend
@pytest.mark.parametrize("name", [name if name == "attention" else pytest.param(name, marks=pytest.mark.long)
                                  for name in ASSIGNMENTS])
def test_the_solution_gets_full_marks_under_every_backend(name):
    """The source solution agrees with the references under this backend (`make test` runs this
    file's backend tests again under JAX, for attention: the others take minutes under JAX's eager
    ops, and `test_the_same_grades_under_jax` grades every catalogue in `make test-long`)."""
    assignment, code, _, _ = table(name)
    results = check.grade_code(assignment, code, seed=check.fairness_seeds(1)[0])
    assert results and not check.lost_cells(results), results


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_bug_loses_the_same_points_on_every_seed_and_is_named(name):
    """The solution and every alternative get full marks, every bug loses the same cells, on each
    of the secret seeds (one here; `make check-assignments` runs 20, and
    `test_a_bug_graded_differently_on_some_seeds_is_reported` shows the check compares seeds),
    and the feedback names every bug."""
    found = check.check_catalogue(name, check.fairness_seeds(SEEDS))
    assert found.bugs >= MIN_BUGS and found.alternatives >= MIN_CORRECT
    assert found.problems == {}


def test_a_bug_graded_differently_on_some_seeds_is_reported(tmp_path, monkeypatch):
    """The check is not blind: a bug that is wrong on odd seeds only (two students with it would
    get different grades) and an edit that changes nothing are both reported."""
    source = assignments.load("attention")
    folder = tmp_path / "attention"
    shutil.copytree(source.folder, folder)
    correct = "return ops.transpose(x, (0, 2, 1, 3))"
    on_odd_seeds = correct + " * (2.0 if int(__import__('os').environ['GRADER_SEED']) % 2 else 1.0)"
    with open(folder / "bugs.py", "a") as f:
        f.write(f"\nBUGS['split_heads'] += [('wrong on odd seeds only', {correct!r}, {on_odd_seeds!r}),\n"
                f"                        ('no change at all', {correct!r}, {correct!r})]\n")
    monkeypatch.setenv(assignments.ROOT_VARIABLE, str(tmp_path))
    seeds = check.fairness_seeds(2)
    assert len({seed % 2 for seed in seeds}) == 2
    found = check.check_catalogue("attention", seeds)
    assert found.unfair == {
        "split_heads: wrong on odd seeds only": {seed: ["split_heads_test"] if seed % 2 else [] for seed in seeds},
        "split_heads: no change at all": "no points lost"}


@pytest.mark.long  # every bug and alternative of every assignment under JAX: `make test-long`
def test_the_same_grades_under_jax():
    """Under JAX too (references, solutions, bugs and alternatives all run on JAX), through the
    staff command, on one seed: the inputs are drawn by numpy, the same under both backends."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    run = subprocess.run([sys.executable, "-m", "grader", "--backend", "jax", "check", "--seeds", "1",
                          "--no-sandbox"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "(jax," in run.stdout and run.stdout.count("none") == len(ASSIGNMENTS), run.stdout


def test_the_backend_option_cannot_switch_a_running_keras():
    import keras

    from grader import __main__ as cli
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(SystemExit, match=f"set KERAS_BACKEND={other} before starting the grader"):
        cli.select_backend(other)
