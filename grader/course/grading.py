"""Autograding: every collected submission through the sandbox, judged here, into the gradebook."""

import ctypes
import json
import os
import shutil
import signal
import traceback
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress

from cluster import executor as cluster_executor
from grader import assignment as assignments, cgroups, sandbox, submission
from grader.course import late
from grader.course.inbox import submitted_students
from grader.course.layout import gradebook
from grader.limits import assignment_limits

ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"  # what nbgrader releases in an answer cell


def trusted_notebooks(course, assignment):
    """The locked and graded cells of each notebook, as the gradebook recorded them at release.

    Besides the locked cells, the manually graded answer cells (written
    questions: `solution` and `grade`): the student's text is kept, their
    points and ids come from here (`"answer": True`).
    """
    import nbformat
    notebooks = []
    with gradebook(course) as gb:
        for nb in sorted(gb.find_assignment(assignment).notebooks, key=lambda n: n.name):
            source = nbformat.read(os.path.join(course, "source", assignment, nb.name + ".ipynb"),
                                   as_version=4)
            trusted = []
            for c in source.cells:
                metadata = c.metadata.get("nbgrader", {})
                answer = bool(metadata.get("solution") and metadata.get("grade"))
                if metadata.get("locked") or answer:
                    trusted.append({"name": metadata["grade_id"], "cell_type": c.cell_type,
                                    "source": ANSWER_PLACEHOLDER if answer else c.source,
                                    "nbgrader": dict(metadata), "answer": answer})
            recorded = {c.name: c.source for c in nb.source_cells}
            for cell in trusted:  # the gradebook is the authority on what was released
                if not cell["answer"]:
                    cell["source"] = recorded.get(cell["name"], cell["source"])
            graded = [{"name": g.name, "points": g.max_score} for g in nb.grade_cells
                      if g.cell_type == "code"]
            order = [c["name"] for c in trusted]
            graded.sort(key=lambda g: order.index(g["name"]) if g["name"] in order else len(order))
            notebooks.append({"name": nb.name, "trusted_cells": trusted, "graded_cells": graded})
    return notebooks


def kernel_files(course, assignment):
    """{name: bytes} copied into each grading kernel's scratch directory: everything released
    beside the notebooks (runtime, public checks, small data files), and the inputs of the
    training outcomes' held-out splits (never their labels)."""
    release_dir = os.path.join(course, "release", assignment)
    files = {}
    for name in sorted(os.listdir(release_dir)):
        path = os.path.join(release_dir, name)
        if not name.endswith(".ipynb") and os.path.isfile(path):
            with open(path, "rb") as f:
                files[name] = f.read()
    return files | assignments.load(assignment).heldout_inputs()


def autograde_jobs(course, assignment, limits, unsafe, sandbox_backend="auto"):
    notebooks = trusted_notebooks(course, assignment)
    for student in submitted_students(course, assignment):
        yield submission.GradingJob(student, assignment, os.path.join(course, "submitted", student, assignment),
                                    os.path.join(course, "autograded", student, assignment), notebooks,
                                    limits, unsafe, sandbox_backend)


def grader_files(course):
    """What the user sandbox's kernels must not read: the course (gradebook, source notebooks,
    submissions, results), the assignments (references, bug catalogues) and reference_impl."""
    import reference_impl
    return [course, assignments.root(), os.path.dirname(os.path.abspath(reference_impl.__file__))]


def choose_sandbox(course, unsafe, executor, requested):
    """(backend to give the jobs, a line naming it). Locally the sandbox is chosen (and probed)
    here; Ray workers choose on their own machines. Under the user backend the grader's
    files are first closed to other users, and checked."""
    requested = requested or os.environ.get(sandbox.BACKEND_VARIABLE) or "auto"
    if unsafe:
        return requested, "sandbox: none (--unsafe-no-sandbox)"
    backend, why = sandbox.choose_backend(requested) if executor == "local" else (requested, "")
    if backend == "user":
        sandbox.close_to_sandbox(grader_files(course))
    if backend == "auto":
        return backend, "sandbox: chosen on each Ray worker (bubblewrap, else user)"
    return backend, sandbox.describe_backend(backend, why)


PR_SET_PDEATHSIG = 1


def _die_with_grader():
    """Local worker start-up: die with the grader.

    PR_SET_PDEATHSIG makes a killed grader take its workers along, and each
    worker's bwrap (--die-with-parent) its kernel, so nothing keeps running
    into a re-run.
    """
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class AutogradeRun:
    """What one `autograde` run ended with: iterating it gives the results.

    `results`: every graded student's result (from this run or an earlier
    one), by student. `not_graded`: {student: reason} for each submission the
    grader could not grade (a fault of the grader, the host or the course, never
    the student's code): nothing was recorded for them, so no zero is exported,
    and the next run grades them again.
    """

    results: list = field(default_factory=list)
    not_graded: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.results)

    def __len__(self):
        return len(self.results)


def _fault(stage, error):
    """One line for staff: what failed, where in the grader, and why."""
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    return f"{stage} failed{where}: {type(error).__name__}: {str(error)[:300]}"


def _earlier_result(job):
    """The result file an earlier run wrote for `job`, or None (missing, or unreadable after a disk fault)."""
    try:
        with open(os.path.join(job.autograded_dir, submission.RESULT_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _likely_seconds(job, earlier):
    """How long `job` will likely run: its earlier run's time, else its notebooks' size as a tie-break."""
    seconds = sum(n.get("seconds", 0) for n in earlier["notebooks"].values()) if earlier else 0
    size = sum(os.lstat(os.path.join(job.submitted_dir, n)).st_size for n in os.listdir(job.submitted_dir))
    return seconds, size


def autograde(course, assignment, workers=None, force=False, unsafe=False,
              limits=None, progress=True, executor="local", ray_address=None, sandbox_backend=None):
    """Grade every collected submission in parallel; finished ones are skipped unless `force`.

    `executor`: "local" (a pool of `workers` processes) or "ray" (one Ray
    task per submission on the cluster at `ray_address`). Either way only
    this process reads the course directory and writes results. A result
    file is written atomically per student before the gradebook is updated,
    and the gradebook update is idempotent, so killing the grader at any
    moment and running it again loses and duplicates nothing.

    `limits`: the sandbox's limits (default: the assignment's measured time
    limits, grader/limits.py). `sandbox_backend`: auto (default: $GRADER_SANDBOX,
    else auto: bubblewrap, or the user backend where bubblewrap cannot start),
    bwrap or user; the console's first line names the one used.

    No one submission can stop the run: any error while reading, running,
    judging or recording one student's work puts that student in the
    returned run's `not_graded` with the reason, and the others are graded.
    """
    course = os.path.abspath(course)
    console = Console(stderr=True)
    backend, sandbox_line = choose_sandbox(course, unsafe, executor, sandbox_backend)
    console.print(sandbox_line, highlight=False)
    if not unsafe and executor == "local":
        console.print(f"sandbox memory bounded by {cgroups.describe_accounting()}", highlight=False)
    limits = limits or assignment_limits(assignment)
    run, jobs, likely_seconds = AutogradeRun(), [], {}
    for job in autograde_jobs(course, assignment, limits, unsafe, backend):
        earlier = _earlier_result(job)
        if earlier is None or force or late.collected_again(course, assignment, job.student):
            likely_seconds[job.student] = _likely_seconds(job, earlier)
            # Whatever a killed run left half-written (executed notebook,
            # temporary files) goes; the submission is graded from scratch.
            shutil.rmtree(job.autograded_dir, ignore_errors=True)
            jobs.append(job)
            continue
        try:
            record_grades(course, earlier)
            run.results.append(earlier)
        except Exception as error:  # noqa: BLE001 - that student only; reported at the end
            run.not_graded[job.student] = _fault("recording the earlier result", error)
    # Likely-slow notebooks (slow last time, or large) go last, so they hold up no one.
    jobs.sort(key=lambda job: likely_seconds[job.student])
    runner = cluster_executor.make_executor(
        executor, ray_address, processes=workers or os.cpu_count() or 1, initializer=_die_with_grader,
        env_vars={"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")})
    support = runner.share(kernel_files(course, assignment))
    prepared = []
    for job in jobs:
        try:
            prepared.append((submission.prepare_submission(job), support))
        except Exception as error:  # noqa: BLE001
            run.not_graded[job.student] = _fault("reading the submission", error)
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), disable=not progress,
                  console=console) as bar:
        task = bar.add_task(f"grading {assignment}", total=len(prepared))
        for (job, _), runs, lost in runner.completed(submission.execute_submission, prepared):
            try:
                if lost:  # the worker's own error, raised there
                    run.not_graded[job.student] = f"running the notebooks failed: {lost}"
                else:
                    result = submission.judge_submission(job, runs)
                    record_grades(course, result)
                    run.results.append(result)
            except Exception as error:  # noqa: BLE001
                run.not_graded[job.student] = _fault("judging", error)
            if job.student in run.not_graded:
                bar.console.print(f"{job.student}: not graded ({run.not_graded[job.student]})")
            bar.advance(task)
    run.results.sort(key=lambda r: r["student"])
    return run


def record_grades(course, result):
    """Write one student's scores, submission time and late penalties into nbgrader's gradebook
    (idempotent); the result file then says whether and why a late penalty applied."""
    student, assignment = result["student"], result["assignment"]
    timestamp = late.read_timestamp(os.path.join(course, "submitted", student, assignment))
    with gradebook(course) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        for notebook, verdict in result["notebooks"].items():
            for cell in verdict["cells"]:
                grade = gb.find_grade(cell["grade_id"], notebook, result["assignment"],
                                      result["student"])
                grade.auto_score = cell["score"]
                grade.needs_manual_grade = False  # nbgrader flags new grades for the formgrader
        gb.db.commit()
    penalty = late.apply_late_penalties(course, assignment, student, list(result["notebooks"]))
    if result.get("late") != penalty:
        result["late"] = penalty
        submission.save_result(os.path.join(course, "autograded", student, assignment), result)
