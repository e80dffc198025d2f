"""A grade that does not depend on the seed or the backend: two students with the same bug lose
the same points.

Each case's inputs force the condition it claims to test (inputs.py says which),
so every catalogued bug loses the same cells on every one of 20 secret seeds, and
every catalogued alternative gets full marks on each of them. Graded in this
process through the capture and verdict path (grader.check.grade_code); the
references and the bugs' outputs are cached per seed. The same check runs under
JAX in a subprocess (the grader grades under the kernel's KERAS_BACKEND).
"""

import json
import os
import subprocess
import sys

import pytest

from grader import assignment as assignments, check, mutation

SEEDS = [7 + 1_000_003 * i for i in range(20)]
JAX_SEEDS = SEEDS[:1]  # the inputs are drawn by numpy, the same under both backends
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def lost(results):
    return frozenset(grade_id for grade_id, (score, points, _) in results.items() if score < points)


def unfair_grades(name, seeds):
    """{what: why} for each bug that does not lose the same (non-empty) cells on every seed, each
    alternative that loses points on a seed, and the solution if it does."""
    assignment = assignments.load(name)
    code = mutation.definitions(assignment.notebook())
    bugs, correct = assignment.catalogue
    unfair = {}
    for seed in seeds:
        cells = lost(check.grade_code(assignment, code, seed=seed))
        if cells:
            unfair[f"solution on seed {seed}"] = sorted(cells)
    for function, edits in bugs.items():
        for description, old, new in edits:
            mutated = mutation.apply_bug(code, old, new)
            lost_per_seed = {seed: lost(check.grade_code(assignment, mutated, seed=seed, only=function))
                             for seed in seeds}
            first = lost_per_seed[seeds[0]]
            if not first or len(set(lost_per_seed.values())) != 1:
                unfair[f"{function}: {description}"] = {
                    seed: sorted(cells) for seed, cells in lost_per_seed.items() if cells != first
                } if first else "no points lost"
        for description, definition in correct[function].items():
            for seed in seeds:
                cells = lost(check.grade_code(assignment, code + "\n\n" + definition, seed=seed, only=function))
                if cells:
                    unfair[f"{function} (correct): {description}"] = f"loses {sorted(cells)} on seed {seed}"
                    break
    return unfair


@pytest.mark.slow
@pytest.mark.parametrize("name", assignments.names())
def test_every_bug_loses_the_same_points_on_every_seed(name):
    assert unfair_grades(name, SEEDS) == {}


@pytest.mark.slow
def test_the_same_grades_under_jax():
    """The solution gets full marks, every bug loses points and every alternative gets full marks
    under JAX too (references, solutions and bugs all run on JAX)."""
    script = ("import json, sys; from tests.test_grading_fairness import JAX_SEEDS, unfair_grades; "
              "from grader import assignment; import keras; assert keras.backend.backend() == 'jax'; "
              "print(json.dumps({name: unfair_grades(name, JAX_SEEDS) for name in assignment.names()}, default=str))")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": REPO}
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=1800)  # five graded layers differentiated under JAX
    assert run.returncode == 0, run.stderr[-3000:]
    unfair = json.loads(run.stdout.strip().splitlines()[-1])
    assert unfair == {name: {} for name in assignments.names()}


def test_the_backend_option_cannot_switch_a_running_keras():
    import keras

    from grader import __main__ as cli
    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(SystemExit, match=f"set KERAS_BACKEND={other} before starting the grader"):
        cli.select_backend(other)
