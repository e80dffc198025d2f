"""assignments/README.md's "Add an assignment", followed as written.

Its commands run as a member of staff would run them (`python -m grader ...`),
into a copy of the assignments folder named by GRADER_ASSIGNMENTS; the solution
is the README's. The new assignment is graded in the sandbox through the course
commands (`grader check`: full marks for the source, zero for the release), and
nothing outside the new folder changes, in the copy or in the repository.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from grader import assignment, check, mutation

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "assignments", "README.md")


def readme_steps():
    """The code blocks of the "Add an assignment" section, in order: [(language, code)]."""
    text = open(README).read()
    section = text.split("### Add an assignment", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [(language, re.sub(r"(?m)^ {3}", "", code).strip())
            for language, code in re.findall(r"```(\w+)\n(.*?)```", section, re.S)]


def digests(root, paths):
    files = {}
    for path in paths:
        with open(os.path.join(root, path), "rb") as f:
            files[path] = hashlib.file_digest(f, "sha256").hexdigest()
    return files


def snapshot(root):
    """{relative path: sha256} of every file under `root`, byte-compiled caches left out."""
    paths = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        paths += [os.path.relpath(os.path.join(folder, name), root) for name in names]
    return digests(root, paths)


def repository_snapshot():
    """The same for the repository's tracked and not-ignored files (no virtualenv, no caches)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode()
    return digests(REPO, [p for p in listed.split("\0") if p and os.path.isfile(os.path.join(REPO, p))])


def run(command, env):
    words = command.split()
    assert words[:2] == ["python", "-m"], command
    return subprocess.run([sys.executable, *words[1:]], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.long  # a whole course graded in the sandbox: `make test-long`
def test_a_new_assignment_made_as_the_readme_says_grades_right(tmp_path, monkeypatch):
    steps = readme_steps()
    assert [language for language, _ in steps] == ["bash", "python", "bash"], steps
    (_, scaffold_command), (_, solution), (_, check_command) = steps
    name = scaffold_command.split()[-1]

    root = tmp_path / "assignments"
    shutil.copytree(os.path.join(REPO, "assignments"), root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before_copy, before_repo = snapshot(root), repository_snapshot()
    env = {**os.environ, assignment.ROOT_VARIABLE: str(root), "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}

    made = run(scaffold_command, env)
    assert made.returncode == 0, made.stderr[-3000:]
    assert made.stdout.strip() == str(root / name)
    assert run(scaffold_command, env).returncode != 0  # never overwrites a folder

    path = root / name / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    solution_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solution_cells) == 1 and "### BEGIN SOLUTION" in solution_cells[0].source
    solution_cells[0].source = solution
    nbformat.write(nb, path)

    checked = run(check_command, env)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    row = next(line for line in checked.stdout.splitlines() if name in line)
    assert re.search(r"\b2 / 2\b.*\b0 / 2\b", row), checked.stdout

    after_copy = snapshot(root)
    assert repository_snapshot() == before_repo
    assert {p: d for p, d in after_copy.items() if not p.startswith(name + os.sep)} == before_copy
    assert sorted(p for p in after_copy if p.startswith(name + os.sep)) == [
        f"{name}/bugs.py", f"{name}/inputs.py", f"{name}/reference.py", f"{name}/{name}.ipynb"]

    # The skeleton's catalogue holds as the tests require of every assignment.
    monkeypatch.setenv(assignment.ROOT_VARIABLE, str(root))
    new = assignment.load(name)
    assert new.problems() == []
    code = mutation.definitions(new.notebook())
    bugs, correct = new.catalogue
    [(description, old, replacement)] = bugs["softmax"]
    [(score, points, messages)] = check.grade_code(new, mutation.apply_bug(code, old, replacement)).values()
    assert score < points and any(f"known bug: {description}" in m for m in messages), messages
    [alternative] = correct["softmax"].values()
    [(score, points, _)] = check.grade_code(new, code + "\n\n" + alternative).values()
    assert score == points == 2
