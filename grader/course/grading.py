"""Autograding: every collected submission through the sandbox, judged here, into the gradebook."""

import ctypes
import json
import os
import shutil
import signal
from dataclasses import asdict

from nbgrader.api import MissingEntry
from tqdm import tqdm

from cluster import executor as cluster_executor
from grader import sandbox, submission
from grader.course.layout import gradebook

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
        gb.db.commit()
