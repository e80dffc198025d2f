"""The course directory: nbgrader's layout and config, its gradebook, and the assignments in it."""

import contextlib
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

from grader import assignment as assignments_
from grader.runtime import grading_runtime

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME_DIR = os.path.join(REPO, "grader", "runtime")

# Paths are the config file's own folder, so a copied or moved course uses its own gradebook.
CONFIG = '''import os
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.db_url = {db_url}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
# Graded cells call grading_runtime.capture; outside `python -m grader` that runs
# the public check, so plain `nbgrader autograde` still grades (on public inputs).
c.Execute.timeout = 300
'''


def db_url(course):
    """The gradebook's SQLAlchemy URL, as nbgrader reads it from the course's nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader
    config = PyFileConfigLoader("nbgrader_config.py", path=os.path.abspath(course)).load_config()
    return config.CourseDirectory.db_url


@contextlib.contextmanager
def gradebook(course):
    """nbgrader's Gradebook for `course`, without its SQLAlchemy autoflush warnings.

    Gradebook.add_submission builds SubmittedAssignment/SubmittedNotebook
    objects before adding them to the session, so SQLAlchemy warns "Object of
    type <...> not in session" once per object: a wall of text about
    nbgrader's internals, not about the grades (the rows are written
    correctly). Only exactly that warning is silenced; errors and other
    warnings still show.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session",
                                category=SAWarning)
        with Gradebook(db_url(course)) as gb:
            yield gb


def write_public_checks(assignment_dir, case_ids):
    """public_checks.npz: reference outputs on the public seed, for students' local checks."""
    arrays = {}
    for case_id in case_ids:
        assignment = assignments_.of_case(case_id)
        if case_id in assignment.outcomes:
            continue  # graded on a held-out split: no public expected values
        function = assignment.case_functions[case_id]
        for name, value in assignments_.reference_outputs(assignment, case_id, function,
                                                          grading_runtime.PUBLIC_SEED).items():
            arrays[f"{case_id}/{name}"] = value
    np.savez(os.path.join(assignment_dir, grading_runtime.PUBLIC_CHECKS_FILE), **arrays)


def assignment_cases(assignment_dir):
    from grader.verdicts import cases_in
    import nbformat
    cases = []
    for name in sorted(os.listdir(assignment_dir)):
        if name.endswith(".ipynb"):
            nb = nbformat.read(os.path.join(assignment_dir, name), as_version=4)
            for cell in nb.cells:
                cases += [c for c in cases_in(cell.source) if c not in cases]
    return cases


def runtime_files(assignment):
    """What a released notebook imports, {name beside the notebook: file}: the capture
    runtime and the assignment's input drawing."""
    return {"grading_runtime.py": os.path.join(RUNTIME_DIR, "grading_runtime.py"),
            assignment.released_inputs_name: os.path.join(assignment.folder, "inputs.py")}


def setup(course, course_id="lm-course", assignments=None, gradebook_url=None):
    """Create an nbgrader course directory holding the project's assignments.

    The gradebook is SQLite in the course directory unless `gradebook_url`
    names another database (e.g. postgresql://user@host/course for graders
    on several machines); it goes into nbgrader_config.py, so nbgrader's own
    commands use the same gradebook.
    """
    course = os.path.abspath(course)
    os.makedirs(os.path.join(course, "source"), exist_ok=True)
    url = repr(gradebook_url) if gradebook_url else '"sqlite:///" + os.path.join(c.CourseDirectory.root, "gradebook.db")'
    with open(os.path.join(course, "nbgrader_config.py"), "w") as f:
        f.write(CONFIG.format(course_id=course_id, db_url=url))
    for name in assignments or assignments_.names():
        assignment = assignments_.load(name)
        assignment.validate()
        target = os.path.join(course, "source", name)
        shutil.copytree(assignment.folder, target, dirs_exist_ok=True,
                        ignore=lambda folder, entries: set(entries) - set(assignment.support_files())
                        if folder == assignment.folder else ())
        for released_name, path in runtime_files(assignment).items():
            shutil.copy(path, os.path.join(target, released_name))
        write_public_checks(target, assignment_cases(target))
    return course


def nbgrader(course, *args):
    """Run one of nbgrader's own commands in the course directory."""
    # nbgrader runs `alembic` by name: put this interpreter's scripts on PATH
    # so it works from an unactivated virtualenv too.
    scripts = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def generate(course, assignment):
    """nbgrader generate_assignment: release/ gets the student version, the gradebook the cells."""
    nbgrader(course, "generate_assignment", assignment, "--force")
    return os.path.join(course, "release", assignment)


release = generate  # the old name; it is nbgrader's generate_assignment, not its release_assignment
