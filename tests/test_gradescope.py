"""The Gradescope autograder zip, run as Gradescope runs it, and the results.json rules.

The zip is built once (for a copy of the attention assignment that declares a leaderboard
column), unpacked into three /autograder-shaped roots (source/, submission/, results/), and
its run_autograder is run in each, with GRADER_GRADESCOPE_ROOT pointing at the root and
GRADER_GRADESCOPE_PYTHON at this virtualenv instead of setup.sh's: on the source solution,
on the solution with one catalogued bug put in, and on a notebook that cheats by writing the
public expected values as its captures. Each results.json is checked against Gradescope's
field rules, written out here independently of the kit's own schema.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import jsonschema
import nbformat
import pytest

from grader import assignment as assignments, mutation
from grader.__main__ import main
from grader.gradescope import autograder
from lms import gradescope

ASSIGNMENT = "attention"
MASK_AFTER_SOFTMAX = assignments.load(ASSIGNMENT).catalogue[0]["scaled_dot_product_attention"][2]
LEADERBOARD = '''import numpy as np

# The largest difference from the reference on the secret padding-mask inputs (lower is better).
LEADERBOARD = [{"name": "largest error", "case": "attention.padding_mask", "order": "asc",
                "value": lambda outputs, expected, calls: max(
                    float(np.max(np.abs(outputs[name] - expected[name]))) for name in expected)}]
'''
# Replaces capture() in the notebook (and in the runtime) with one that writes the public
# expected values, which every student holds in public_checks.npz, as the captures.
CHEAT = '''import os
import numpy as np
import grading_runtime

def forged_capture(case_id, fn):
    with np.load("public_checks.npz") as public:
        arrays = {k.split("/", 1)[1]: public[k] for k in public.files if k.startswith(case_id + "/")}
    np.savez(os.path.join(os.environ["GRADER_CAPTURE_DIR"], case_id + ".npz"), **arrays)

grading_runtime.capture = capture = forged_capture
'''

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
# Gradescope's results.json fields (https://gradescope-autograders.readthedocs.io/en/latest/specs/).
GRADESCOPE_SCHEMA = {
    "type": "object",
    "required": ["score", "tests"],
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "tests": {"type": "array", "items": {
            "type": "object",
            "required": ["score", "max_score", "name"],
            "properties": {"score": {"type": "number"}, "max_score": {"type": "number", "minimum": 0},
                           "status": {"enum": ["passed", "failed"]}, "name": {"type": "string"},
                           "output": {"type": "string"}, "visibility": VISIBILITY}}},
        "leaderboard": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "value"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"enum": ["asc", "desc"]}}}},
    },
}


def check_gradescope_rules(results):
    jsonschema.validate(results, GRADESCOPE_SCHEMA)
    for test in results["tests"]:
        assert test["score"] <= test["max_score"], test
        assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed"), test
    assert results["score"] == sum(test["score"] for test in results["tests"])


def with_solution_cells(nb, edit):
    """A copy of `nb` with `edit(source)` applied to each solution cell."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = edit(cell.source)
    return nb


def buggy(nb):
    _, old, new = MASK_AFTER_SOFTMAX
    return with_solution_cells(nb, lambda source: mutation.apply_bug(source, old, new) if old in source else source)


def cheating(release_nb):
    first = next(c for c in release_nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    return with_solution_cells(release_nb, lambda source: source + "\n\n" + CHEAT if source == first.source else source)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The autograder zip of a copy of the attention assignment that declares a leaderboard column."""
    folder = tmp_path_factory.mktemp("bundle")
    root = folder / "assignments"
    shutil.copytree(assignments.load(ASSIGNMENT).folder, root / ASSIGNMENT)
    (root / ASSIGNMENT / "leaderboard.py").write_text(LEADERBOARD)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(assignments.ROOT_VARIABLE, str(root))
        main(["gradescope", ASSIGNMENT, "--out", str(folder / "autograder.zip")])
    return folder / "autograder.zip"


@pytest.fixture(scope="module")
def graded(bundle, tmp_path_factory):
    """{submission: results.json} for the three submissions, graded at once by the bundle."""
    folder = tmp_path_factory.mktemp("gradescope")
    with zipfile.ZipFile(bundle) as archive:
        source_nb = nbformat.reads(archive.read(f"course/source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"), as_version=4)
        release_nb = nbformat.reads(archive.read(f"course/release/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"), as_version=4)
    submissions = {"correct": source_nb, "buggy": buggy(source_nb), "cheating": cheating(release_nb)}
    runs = {}
    for name, nb in submissions.items():
        gradescope_root = folder / name
        for part in ("source", "submission", "results"):
            (gradescope_root / part).mkdir(parents=True)
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(gradescope_root / "source")
        os.chmod(gradescope_root / "source" / "run_autograder", 0o755)  # zipfile drops the mode bits
        nbformat.write(nb, str(gradescope_root / "submission" / f"{ASSIGNMENT}.ipynb"))
        env = {**os.environ, "GRADER_GRADESCOPE_ROOT": str(gradescope_root), "GRADER_GRADESCOPE_PYTHON": sys.executable}
        env.pop("PYTHONPATH", None)  # the bundle's own kit, not this checkout
        env.pop(assignments.ROOT_VARIABLE, None)
        runs[name] = subprocess.Popen([str(gradescope_root / "source" / "run_autograder")], env=env, cwd=folder,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results = {}
    for name, process in runs.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output[-3000:]
        results[name] = json.loads((folder / name / "results" / "results.json").read_text())
    return results


def test_the_entry_points_are_executable_bash_scripts(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        for entry_point in autograder.ENTRY_POINTS:  # Gradescope runs them as they are unpacked
            assert archive.getinfo(entry_point).external_attr >> 16 & 0o111 == 0o111
            (tmp_path / entry_point).write_bytes(archive.read(entry_point))
            subprocess.run(["bash", "-n", str(tmp_path / entry_point)], check=True)


def test_the_notebook_is_found_by_name_and_links_are_not_followed(bundle, tmp_path):
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "source", [n for n in archive.namelist() if n.startswith("course/")])
    course_dir = str(tmp_path / "source" / "course")
    solution = tmp_path / "source" / "course" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    renamed = tmp_path / "renamed" / "upload" / f"{ASSIGNMENT} (1).ipynb"
    renamed.parent.mkdir(parents=True)
    renamed.write_bytes(solution.read_bytes())
    notes = autograder.collect_submission(course_dir, ASSIGNMENT, str(tmp_path / "renamed"), str(tmp_path / "inbox1"))
    collected = tmp_path / "source" / "course" / "submitted" / autograder.STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert collected.read_bytes() == solution.read_bytes()
    assert notes == {ASSIGNMENT: f"graded upload/{ASSIGNMENT} (1).ipynb as {ASSIGNMENT}.ipynb (the assignment's "
                                 f"notebook); submit it under that name"}
    # A link to the staff's solution is not a submitted notebook: nothing is collected.
    shutil.rmtree(collected.parent)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / f"{ASSIGNMENT}.ipynb").symlink_to(solution)
    assert autograder.collect_submission(course_dir, ASSIGNMENT, str(tmp_path / "linked"), str(tmp_path / "inbox2")) == {}
    assert os.listdir(collected.parent) == []


def by_cell(results):
    return {test["name"].split(": ", 1)[1]: test for test in results["tests"]}


@pytest.mark.long  # three submissions graded by the bundle in the sandbox: `make test-long`
def test_every_results_json_keeps_gradescope_rules(graded):
    for results in graded.values():
        check_gradescope_rules(results)
        assert gradescope.problems(results) == []
        assert results["visibility"] == "visible" and results["execution_time"] > 0
        # Every test runs on secret inputs: Gradescope's hidden tests, shown once grades are published.
        assert {test["visibility"] for test in results["tests"]} == {"after_published"}
        assert "when your instructor publishes the grades" in results["output"]


@pytest.mark.long  # three submissions graded by the bundle in the sandbox: `make test-long`
def test_the_source_solution_gets_full_marks_and_tops_the_leaderboard(graded):
    results = graded["correct"]
    assert results["score"] == 12 and len(results["tests"]) == 7
    assert all(test["status"] == "passed" for test in results["tests"])
    (entry,) = results["leaderboard"]
    assert entry["name"] == "largest error" and entry["order"] == "asc" and 0 <= entry["value"] < 1e-5


@pytest.mark.long  # three submissions graded by the bundle in the sandbox: `make test-long`
def test_a_catalogued_bug_loses_its_cells_and_is_named(graded):
    results, description = graded["buggy"], MASK_AFTER_SOFTMAX[0]
    cells = by_cell(results)
    failed = {name for name, test in cells.items() if test["status"] == "failed"}
    # The layer attends with the student's function, so it fails too (its own catalogue cannot name the bug).
    assert failed == {"sdpa_padding_test", "causal_attention_test", "layer_test"}
    assert results["score"] == 12 - 2 - 1 - 3
    for name in failed - {"layer_test"}:
        assert cells[name]["score"] == 0 and f"known bug: {description}" in cells[name]["output"]
    (entry,) = results["leaderboard"]
    assert entry["value"] > 1e-2  # masked positions keep their weight: far from the reference


@pytest.mark.long  # three submissions graded by the bundle in the sandbox: `make test-long`
def test_forged_public_captures_earn_nothing(graded):
    results = graded["cheating"]
    assert results["score"] == 0
    assert all(test["status"] == "failed" and test["score"] == 0 for test in results["tests"])
    # Its outputs miss the reference on the secret inputs; no catalogued bug explains them.
    assert not any("known bug" in test["output"] for test in results["tests"])
    values = [entry["value"] for entry in results.get("leaderboard", [])]
    assert values == [] and "leaderboard 'largest error': not computed" in results["output"] \
        or values[0] > 1e-2


@pytest.mark.parametrize("broken, problem", [
    ({"score": 3, "max_score": 2}, "above max_score"),
    ({"visibility": "students"}, "is not one of"),
    ({"score": float("nan")}, "not a finite number"),
    ({"max_score": -1}, "less than the minimum"),
])
def test_results_json_refuses_what_gradescope_would_reject(broken, problem):
    test = {"name": "attention: sdpa_no_mask_test", "score": 2, "max_score": 2, **broken}
    with pytest.raises(ValueError, match=problem):
        gradescope.results_json([test])


def test_leaderboard_entries_are_checked():
    with pytest.raises(ValueError, match="is not one of"):
        gradescope.results_json([], leaderboard=[{"name": "accuracy", "value": 0.9, "order": "up"}])
    assert gradescope.results_json([], leaderboard=[{"name": "GLUE score", "value": "-"}])["leaderboard"]


def test_a_leaderboard_column_must_read_a_graded_case(tmp_path, monkeypatch):
    shutil.copytree(assignments.load(ASSIGNMENT).folder, tmp_path / ASSIGNMENT)
    (tmp_path / ASSIGNMENT / "leaderboard.py").write_text(
        'LEADERBOARD = [{"name": "loss", "case": "attention.nothing", "value": len, "order": "down"}]\n')
    monkeypatch.setenv(assignments.ROOT_VARIABLE, str(tmp_path))
    with pytest.raises(SystemExit, match="reads case 'attention.nothing'.*\n.*order must be one of asc, desc"):
        main(["gradescope", ASSIGNMENT, "--out", str(tmp_path / "never.zip")])
    assert not (tmp_path / "never.zip").exists()
