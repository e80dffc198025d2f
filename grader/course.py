"""Course directory commands over nbgrader's layout and gradebook."""

import contextlib
import ctypes
import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
import zipfile
from dataclasses import asdict

import numpy as np
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from tqdm import tqdm

from cluster import executor as cluster_executor
from grader import assignment as assignments_, sandbox, submission
from grader.runtime import grading_runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME_DIR = os.path.join(REPO, "grader", "runtime")

CONFIG = '''c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
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
    from grader.verdicts import outputs_of
    arrays = {}
    for case_id in case_ids:
        assignment = assignments_.of_case(case_id)
        reference = assignment.references[assignment.case_functions[case_id]]
        calls = assignment.draw_calls(case_id, grading_runtime.PUBLIC_SEED)
        for name, value in outputs_of(reference, calls).items():
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
    url = gradebook_url or "sqlite:///" + os.path.join(course, "gradebook.db")
    with open(os.path.join(course, "nbgrader_config.py"), "w") as f:
        f.write(CONFIG.format(course_id=course_id, root=course, db_url=url))
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


def release(course, assignment):
    """nbgrader generate_assignment: release/ gets the student version, the gradebook the cells."""
    nbgrader(course, "generate_assignment", assignment, "--force")
    return os.path.join(course, "release", assignment)


def collect(course, assignment, inbox):
    """Copy `inbox/<student>/*.ipynb` into submitted/<student>/<assignment>/ and register students."""
    students = []
    before = submitted_files(course, assignment)
    with gradebook(course) as gb:
        for student in sorted(os.listdir(inbox)):
            source = os.path.join(inbox, student)
            if not os.path.isdir(source):
                continue
            target = os.path.join(course, "submitted", student, assignment)
            shutil.copytree(source, target, dirs_exist_ok=True)
            gb.update_or_create_student(student)
            students.append(student)
    grade_again(course, assignment, changed_students(course, assignment, before))
    return students


# Canvas "Download Submissions" names each file
# <sortable name, lower case, no punctuation>_[LATE_]<user id>_<submission id>_<uploaded name>,
# and a re-upload as <name>-1.ipynb: e.g. doejane_LATE_12345_678901_attention-1.ipynb is
# doejane's attention.ipynb. nbgrader matches the pattern against the extracted file's
# whole path, hence the leading (?:.*/)?.
CANVAS_PATTERN = (r"(?:.*/)?(?P<student_id>[^/_]+)_(?:LATE_)?\d+_\d+_"
                  r"(?P<file_id>[^/]+?)(?:-\d+)?\.ipynb$")


class CollectError(ValueError):
    """An LMS download that cannot be collected; nothing was changed."""


def lms_archives(source):
    """The zip files to collect: `source` itself, or every *.zip in the folder `source`."""
    if os.path.isdir(source):
        archives = sorted(os.path.join(source, n) for n in os.listdir(source) if n.endswith(".zip"))
        if not archives:
            raise CollectError(f"{source} holds no .zip files; put the LMS downloads there")
    elif os.path.isfile(source):
        archives = [source]
    else:
        raise CollectError(f"{source} does not exist")
    for archive in archives:
        if not archive.endswith(".zip") or not zipfile.is_zipfile(archive):
            raise CollectError(f"{archive} is not a zip archive; download the submissions "
                               "from the LMS again (one .zip holding the notebooks)")
        with zipfile.ZipFile(archive) as zf:
            if not any(n.endswith((".ipynb", ".zip")) for n in zf.namelist()):
                raise CollectError(f"{archive} holds no notebooks (.ipynb); is it the download "
                                   "of this assignment's submissions?")
    return archives


def collect_zip(course, assignment, source, pattern=CANVAS_PATTERN):
    """Collect LMS zip downloads with nbgrader's `zip_collect`; returns (students, warnings).

    Every archive is checked before anything is copied. The archives are kept
    under downloaded/<run>/<assignment>/archive/, one folder per run, so earlier
    downloads stay. A student found in the download gets their submission
    replaced by it (an LMS download holds each student's latest); other
    students' submissions are not touched. Files whose name does not match
    `pattern` or no released notebook are skipped with a warning.
    """
    course = os.path.abspath(course)
    archives = lms_archives(source)
    run = "downloaded/" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f")
    archive_dir = os.path.join(course, run, assignment, "archive")
    os.makedirs(archive_dir)
    for archive in archives:
        shutil.copy(archive, archive_dir)
    before = submitted_files(course, assignment)
    # --strict skips notebooks whose name is not a released one instead of
    # replacing a student's valid submission with them; --force lets a newer
    # download replace a student's earlier one.
    result = nbgrader(course, "zip_collect", assignment, "--strict", "--force",
                      f"--ZipCollectApp.downloaded_directory={run}",
                      f"--FileNameCollectorPlugin.named_regexp={pattern}")
    log = result.stderr.splitlines()
    # nbgrader logs "Copying to: submitted/<student>/<assignment>/<file>" per collected file.
    submitted = os.path.join(course, "submitted") + os.sep
    copied = [line.split("Copying to:", 1)[1].strip() for line in log if "Copying to:" in line]
    students = sorted({path[len(submitted):].split(os.sep)[0] for path in copied
                       if path.startswith(submitted)})
    with gradebook(course) as gb:
        for student in students:
            gb.update_or_create_student(student)
    grade_again(course, assignment, changed_students(course, assignment, before))
    warnings_seen = [line.split("WARNING]", 1)[1].strip() for line in log
                     if "WARNING]" in line and "Skipped" in line]
    return students, warnings_seen


def changed_students(course, assignment, before):
    """Students with a file added or changed under submitted/ since the snapshot `before`."""
    changed = submitted_files(course, assignment).items() - before.items()
    return sorted({student for (student, _), _ in changed})


def grade_again(course, assignment, students):
    """A new submission makes the student's result stale: remove it so autograde grades them again."""
    for student in students:
        stale = os.path.join(course, "autograded", student, assignment, submission.RESULT_FILE)
        if os.path.isfile(stale):
            os.remove(stale)


def submitted_files(course, assignment):
    """{(student, file): SHA-256 of its content} of everything under submitted/*/<assignment>/."""
    files = {}
    submitted = os.path.join(course, "submitted")
    for student in os.listdir(submitted) if os.path.isdir(submitted) else []:
        directory = os.path.join(submitted, student, assignment)
        for name in os.listdir(directory) if os.path.isdir(directory) else []:
            with open(os.path.join(directory, name), "rb") as f:
                files[(student, name)] = hashlib.file_digest(f, "sha256").hexdigest()
    return files


def trusted_notebooks(course, assignment):
    """The locked and graded cells of each notebook, as the gradebook recorded them at release."""
    import nbformat
    notebooks = []
    with gradebook(course) as gb:
        for nb in sorted(gb.find_assignment(assignment).notebooks, key=lambda n: n.name):
            source = nbformat.read(os.path.join(course, "source", assignment, nb.name + ".ipynb"),
                                   as_version=4)
            trusted = [{"name": c.metadata["nbgrader"]["grade_id"], "source": c.source,
                        "cell_type": c.cell_type, "nbgrader": dict(c.metadata["nbgrader"])}
                       for c in source.cells
                       if c.metadata.get("nbgrader", {}).get("locked")]
            recorded = {c.name: c.source for c in nb.source_cells}
            for cell in trusted:  # the gradebook is the authority on what was released
                cell["source"] = recorded.get(cell["name"], cell["source"])
            graded = [{"name": g.name, "points": g.max_score} for g in nb.grade_cells
                      if g.cell_type == "code"]
            order = [c["name"] for c in trusted]
            graded.sort(key=lambda g: order.index(g["name"]) if g["name"] in order else len(order))
            notebooks.append({"name": nb.name, "trusted_cells": trusted, "graded_cells": graded})
    return notebooks


def released_files(course, assignment):
    """{name: bytes} of everything released beside the notebooks (runtime, public
    checks, small data files): copied into each kernel's scratch directory."""
    release_dir = os.path.join(course, "release", assignment)
    files = {}
    for name in sorted(os.listdir(release_dir)):
        path = os.path.join(release_dir, name)
        if not name.endswith(".ipynb") and os.path.isfile(path):
            with open(path, "rb") as f:
                files[name] = f.read()
    return files


def autograde_jobs(course, assignment, limits, unsafe):
    notebooks = trusted_notebooks(course, assignment)
    submitted = os.path.join(course, "submitted")
    for student in sorted(os.listdir(submitted)) if os.path.isdir(submitted) else []:
        directory = os.path.join(submitted, student, assignment)
        if os.path.isdir(directory):
            yield {"student": student, "assignment": assignment, "submitted_dir": directory,
                   "autograded_dir": os.path.join(course, "autograded", student, assignment),
                   "notebooks": notebooks, "limits": asdict(limits), "unsafe": unsafe}


PR_SET_PDEATHSIG = 1


def _die_with_grader():
    """Local worker start-up: die with the grader.

    PR_SET_PDEATHSIG makes a killed grader take its workers along, and each
    worker's bwrap (--die-with-parent) its kernel, so nothing keeps running
    into a re-run.
    """
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def autograde(course, assignment, workers=None, force=False, unsafe=False,
              limits=sandbox.Limits(), progress=True, executor="local", ray_address=None):
    """Grade every collected submission in parallel; finished ones are skipped unless `force`.

    `executor`: "local" (a pool of `workers` processes) or "ray" (one Ray
    task per submission on the cluster at `ray_address`). Either way only
    this process reads the course directory and writes results. A result
    file is written atomically per student before the gradebook is updated,
    and the gradebook update is idempotent, so killing the grader at any
    moment and running it again loses and duplicates nothing.
    """
    course = os.path.abspath(course)
    if not unsafe and executor == "local":  # Ray workers check on their own machines
        sandbox.check_available()
    jobs, results = [], []
    for job in autograde_jobs(course, assignment, limits, unsafe):
        done = os.path.join(job["autograded_dir"], submission.RESULT_FILE)
        if os.path.isfile(done) and not force:
            with open(done) as f:
                results.append(json.load(f))
        else:
            # Whatever a killed run left half-written (executed notebook,
            # temporary files) goes; the submission is graded from scratch.
            shutil.rmtree(job["autograded_dir"], ignore_errors=True)
            jobs.append(job)
    for result in results:
        record_grades(course, result)
    runner = cluster_executor.make_executor(
        executor, ray_address, processes=workers or os.cpu_count() or 1, initializer=_die_with_grader,
        env_vars={"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")})
    support = runner.share(released_files(course, assignment))
    prepared = [(submission.prepare_submission(job), support) for job in jobs]
    bar = tqdm(total=len(prepared), desc=f"grading {assignment}", unit="nb", disable=not progress)
    for (job, _), runs, lost in runner.completed(submission.execute_submission, prepared):
        if lost:
            bar.write(f"{job['student']}: not graded ({lost}); grade again to retry")
            continue
        result = submission.judge_submission(job, runs)
        record_grades(course, result)
        results.append(result)
        bar.update()
    bar.close()
    return sorted(results, key=lambda r: r["student"])


def record_grades(course, result):
    """Write one student's scores into nbgrader's gradebook (idempotent)."""
    with gradebook(course) as gb:
        gb.update_or_create_student(result["student"])
        try:
            gb.find_submission(result["assignment"], result["student"])
        except MissingEntry:
            gb.add_submission(result["assignment"], result["student"])
        for notebook, verdict in result["notebooks"].items():
            for cell in verdict["cells"]:
                grade = gb.find_grade(cell["grade_id"], notebook, result["assignment"],
                                      result["student"])
                grade.auto_score = cell["score"]
                grade.needs_manual_grade = False  # only written answers wait for the formgrader
        gb.db.commit()


def load_results(course, assignment):
    results = []
    autograded = os.path.join(course, "autograded")
    for student in sorted(os.listdir(autograded)) if os.path.isdir(autograded) else []:
        path = os.path.join(autograded, student, assignment, submission.RESULT_FILE)
        if os.path.isfile(path):
            with open(path) as f:
                results.append(json.load(f))
    return results


def feedback(course, assignment):
    """Per-student HTML feedback under feedback/<student>/<assignment>/."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    env = Environment(loader=FileSystemLoader(os.path.join(REPO, "grader", "templates")),
                      autoescape=select_autoescape(["html", "j2"]))
    template = env.get_template("feedback.html.j2")
    paths = []
    for result in load_results(course, assignment):
        directory = os.path.join(course, "feedback", result["student"], assignment)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "feedback.html")
        with open(path, "w") as f:
            f.write(template.render(result=result))
        paths.append(path)
    return paths


def export(course, assignment):
    """nbgrader's CSV (via `nbgrader export`) and a Gradescope results.json per student."""
    exports = os.path.join(course, "exports")
    os.makedirs(exports, exist_ok=True)
    csv_path = os.path.join(exports, "grades.csv")
    nbgrader(course, "export", "--to", csv_path)
    for result in load_results(course, assignment):
        directory = os.path.join(exports, "gradescope", result["student"])
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "results.json"), "w") as f:
            json.dump(gradescope_results(result), f, indent=1)
    return csv_path


def gradescope_results(result):
    tests = []
    for notebook, verdict in result["notebooks"].items():
        notes = verdict["problems"] + verdict["events"]
        for cell in verdict["cells"]:
            lines = [case["message"] for case in cell["cases"]] or ["not graded: " + "; ".join(notes)]
            tests.append({"name": f"{notebook}: {cell['grade_id']}", "score": cell["score"],
                          "max_score": cell["points"], "visibility": "visible",
                          "output": "\n".join(lines)})
    return {"score": result["score"], "visibility": "visible", "tests": tests,
            "output": "\n".join(p for n in result["notebooks"].values() for p in n["problems"] + n["events"])}


def grade_table(course, assignment):
    rows = [(r["student"], r["score"], r["max_score"]) for r in load_results(course, assignment)]
    return "\n".join(f"{s:<20} {score:>6g} / {top:g}" for s, score, top in rows)
