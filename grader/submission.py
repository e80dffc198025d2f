"""Grade one student's submission of one assignment.

Stages, nbgrader-style: read the notebook, restore the trusted cells and draw
the secret seed (main process) -> execute in the sandbox (a worker: a local
process or a Ray node) -> judge the captures and write the result file
atomically (main process; the result file marks the work as done).
"""

import contextlib
import copy
import importlib.resources
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace

import jsonschema
import nbformat

from grader import execute, sandbox

MAX_NOTEBOOK_BYTES = 20 * 2**20
RESULT_FILE = "grader_result.json"


@dataclass
class PreparedNotebook:
    """One notebook after the main-process stage: what the student reads, and what the sandbox runs."""

    problems: list                     # messages for the student
    source: str | None = None          # the notebook with its trusted cells restored; None: unreadable
    seed: int | None = None            # the secret seed its captures are drawn from
    capture_files: list = field(default_factory=list)  # the only capture names the grader reads


@dataclass
class NotebookRun:
    """What the sandbox gave back for one notebook (plain data, from a local worker or a Ray node)."""

    events: list = field(default_factory=list)
    seconds: float = 0.0
    executed: str | None = None        # the executed notebook, outputs sanitised and capped
    captures: dict = field(default_factory=dict)  # {capture file name: bytes}
    sandbox: str = ""                  # the sandbox it ran in: bwrap, user, or none (--unsafe-no-sandbox)


@dataclass
class GradingJob:
    """One student's submission of one assignment, as it passes between the stages."""

    student: str
    assignment: str
    submitted_dir: str
    autograded_dir: str
    notebooks: list                    # [{"name", "trusted_cells", "graded_cells"}], from the gradebook
    limits: sandbox.Limits
    unsafe: bool = False
    sandbox_backend: str = "auto"      # auto, bwrap or user (sandbox.choose_backend)
    prepared: dict = field(default_factory=dict)  # {notebook name: PreparedNotebook}


def read_submission(path):
    """(notebook, problems): an nbformat-4 notebook or None, and messages for the student."""
    if not os.path.isfile(path):
        return None, [f"{os.path.basename(path)} is missing from the submission"]
    if os.path.getsize(path) > MAX_NOTEBOOK_BYTES:
        return None, [f"{os.path.basename(path)} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB; "
                      "clear its outputs (Kernel > Restart & Clear Output) and submit again"]
    try:
        with open(path, encoding="utf-8") as f:
            original = nbformat.reads(f.read(), as_version=nbformat.NO_CONVERT)
        version = original.nbformat  # convert() upgrades in place
        nb = nbformat.convert(original, 4) if version != 4 else original
        nbformat.validate(nb)
    except Exception as error:
        return None, [f"{os.path.basename(path)} is not a readable notebook ({type(error).__name__}: "
                      f"{str(error)[:200]}); open it in Jupyter, save it and submit again"]
    problems = []
    if version != 4:
        problems.append(f"the notebook was in the old format {version}; it was converted")
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    if kernel != "python3":
        problems.append(f"the notebook's kernel was {kernel!r}; it was graded with Python 3")
    return nb, problems


def _nbgrader_schema():
    """nbgrader's own cell-metadata schema (v3), for the types of its fields only.

    Its required keys and its ban on extra keys are left out: a cell that
    omits a field, or carries an old extension's extra one, is still read
    the way nbgrader reads it; a field of the wrong type (a list as grade_id,
    `null` as the whole metadata, points as a string) is not.
    """
    schema = json.loads(importlib.resources.files("nbgrader.nbgraderformat").joinpath("v3.json").read_text())
    return {"type": "object", "properties": {key: {k: v for k, v in field.items() if k != "default"}
                                             for key, field in schema["properties"].items()}}


NBGRADER_METADATA = jsonschema.Draft4Validator(_nbgrader_schema())


def drop_malformed_metadata(nb):
    """Remove `nbgrader` cell metadata that does not fit nbgrader's schema (the
    cell then runs as ordinary code); returns messages for the student."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if "nbgrader" not in cell.metadata:
            continue
        error = next(iter(NBGRADER_METADATA.iter_errors(cell.metadata["nbgrader"])), None)
        if error is not None:
            where = "/".join(str(p) for p in error.path) or "the whole entry"
            problems.append(f"cell {index}'s nbgrader metadata is malformed ({where}: {error.message[:120]}); "
                            "it was removed and the cell runs as ordinary code")
            del cell.metadata["nbgrader"]
    return problems


def restore_trusted_cells(nb, trusted_cells):
    """Put back every locked cell (source and nbgrader metadata) as released.

    `trusted_cells` is the source notebook's locked cells and manually graded
    answer cells in order: [{"name", "source", "cell_type", "nbgrader", "answer"?}].
    Edited locked cells are restored, an answer cell keeps the student's text
    under its released metadata (its points cannot be raised), duplicates are
    dropped, deleted cells re-inserted just before the next trusted cell (after
    the student's solution). Returns messages for the student.
    """
    problems = drop_malformed_metadata(nb)
    trusted = {cell["name"]: cell for cell in trusted_cells}
    kept, seen = [], set()
    for cell in nb.cells:
        name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if name in trusted:
            if name in seen:
                problems.append(f"cell {name!r} appeared twice; the copy was removed")
                continue
            seen.add(name)
            original = trusted[name]
            if original.get("answer"):
                original = dict(original, source=cell.source)  # the student's answer
            elif cell.source != original["source"] or cell.cell_type != original["cell_type"]:
                problems.append(f"locked cell {name!r} was edited; the original was restored")
            if _grading_fields(cell.metadata.get("nbgrader", {})) != _grading_fields(original["nbgrader"]):
                problems.append(f"the grading metadata of cell {name!r} was edited; it was restored")
            cell = _new_cell(original)
        elif cell.get("metadata", {}).get("nbgrader", {}).get("locked") or \
                cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            problems.append(f"cell {name!r} claims to be a locked or graded cell but is not one "
                            "of the assignment's; it runs as ordinary code")
            cell.metadata.pop("nbgrader", None)
        kept.append(cell)
    for i, original in enumerate(trusted_cells):
        if original["name"] in seen:
            continue
        kind = "answer cell" if original.get("answer") else "locked cell"
        problems.append(f"{kind} {original['name']!r} was missing; it was put back"
                        + (" empty" if original.get("answer") else ""))
        # Just before the next locked cell that follows it, so after the student's
        # solution for the same section; at the end when none follows.
        later = {c["name"] for c in trusted_cells[i + 1:]}
        position = next((j for j, cell in enumerate(kept)
                         if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in later),
                        len(kept))
        kept.insert(position, _new_cell(original))
        seen.add(original["name"])
    nb.cells = kept
    return problems


def _grading_fields(metadata):
    return {key: metadata.get(key) for key in ("grade", "grade_id", "locked", "points", "solution")}


def _new_cell(original):
    make = nbformat.v4.new_code_cell if original["cell_type"] == "code" else nbformat.v4.new_markdown_cell
    return make(original["source"], metadata={"nbgrader": copy.deepcopy(original["nbgrader"])})


def _write_atomic(path, text):
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(handle, "w") as f:
        f.write(text)
    os.replace(temporary, path)


RUN_DIR_PREFIX = "grader-run-"


@contextlib.contextmanager
def run_directory():
    """A temporary directory named after this process's pid, removed afterwards.

    Kernel sockets, support files and captures live there. A process killed
    with SIGKILL cannot clean up, so each new one first removes the
    directories of processes that are no longer alive. The directory lets
    others through (the sandbox user reaches its files) but not list it.
    """
    temp = tempfile.gettempdir()
    for name in os.listdir(temp):
        pid = name[len(RUN_DIR_PREFIX):].split("-")[0]
        if name.startswith(RUN_DIR_PREFIX) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(temp, name), ignore_errors=True)
    path = tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-")
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        pass
    return True


def prepare_submission(job):
    """Main-process stage: read each notebook, restore its trusted cells, draw its secret seed.

    Adds what a worker needs as plain data (`prepared`: each notebook's
    source), so the worker needs no access to the course directory.
    """
    from grader.assignment import secret_seed
    from grader.verdicts import cases_in

    prepared = {}
    for notebook in job.notebooks:
        name = notebook["name"]
        nb, problems = read_submission(os.path.join(job.submitted_dir, name + ".ipynb"))
        prepared[name] = PreparedNotebook(problems)
        if nb is not None:
            problems += restore_trusted_cells(nb, notebook["trusted_cells"])
            sources = {c["name"]: c["source"] for c in notebook["trusted_cells"]}
            cases = [case for cell in notebook["graded_cells"] for case in cases_in(sources[cell["name"]])]
            prepared[name] = PreparedNotebook(
                problems, source=nbformat.writes(nb), seed=secret_seed(cases),
                capture_files=[case + suffix for case in cases for suffix in (".npz", ".error.txt")])
    return replace(job, prepared=prepared)


def execute_submission(job, support):
    """Worker stage: run each prepared notebook in the sandbox; return what it produced.

    Data in (the prepared job, the released support files as {name: bytes}),
    data out (the executed notebooks, the capture files' bytes).
    It runs in a local worker process or on a Ray node alike, and imports
    neither the reference nor Keras; `judge_submission` computes verdicts in
    the grader's main process.
    """
    # A Ray worker machine without a usable sandbox refuses the job (the
    # driver reports it, ungraded) rather than grading zeros; checked once per process.
    backend = None if job.unsafe else sandbox.choose_backend(job.sandbox_backend)[0]
    slot = sandbox.claim_slot()
    uid = sandbox.sandbox_uid(slot)
    runs = {}
    with run_directory() as work:
        support_files = {}
        for name, data in support.items():
            support_files[name] = os.path.join(work, "support-" + name)
            with open(support_files[name], "wb") as f:
                f.write(data)
            os.chmod(support_files[name], 0o644)
        for name, prepared in job.prepared.items():
            runs[name] = NotebookRun()
            if prepared.source is None:
                continue
            capture_dir = tempfile.mkdtemp(prefix="capture-", dir=work)
            if os.geteuid() == 0:
                os.chown(capture_dir, uid, uid)
            nb = nbformat.reads(prepared.source, as_version=4)
            execution = execute.run_notebook(
                nb, support_files=support_files, seed=prepared.seed, capture_dir=capture_dir,
                limits=job.limits, slot=slot, unsafe=job.unsafe, work_dir=work, backend=backend)
            captures, unread = read_captures(capture_dir, prepared.capture_files, job.limits.capture_bytes)
            if unread:
                execution.events.append(f"captures past {job.limits.capture_bytes // 2**20} MiB in total "
                                        f"were not read: {', '.join(unread)}")
            runs[name] = NotebookRun(execution.events, execution.seconds, nbformat.writes(nb), captures,
                                     sandbox=backend or "none")
    return runs


def read_captures(capture_dir, names, budget):
    """({name: bytes}, [names not read]) of the expected capture files that are regular
    files (links are not followed), `budget` bytes at most in all.

    A file over the capture size limit is cut just past it: the judge then
    rejects it as too large without the whole file crossing to the grader.
    """
    captures, unread = {}, []
    for name in names:
        try:
            with sandbox.open_untrusted(os.path.join(capture_dir, name)) as f:
                size = min(os.fstat(f.fileno()).st_size, sandbox.MAX_CAPTURE_BYTES + 1)
                if size > budget:
                    unread.append(name)
                    continue
                captures[name] = f.read(size)
                budget -= len(captures[name])
        except (OSError, ValueError):
            continue
    return captures, unread


def judge_submission(job, runs):
    """Main-process stage: judge the captures, save the result atomically (marks it done)."""
    from grader import verdicts  # imports the reference; only the main process needs it

    os.makedirs(job.autograded_dir, exist_ok=True)
    result = {"student": job.student, "assignment": job.assignment, "notebooks": {}}
    for notebook in job.notebooks:
        name = notebook["name"]
        prepared, run = job.prepared[name], runs[name]
        sources = {c["name"]: c["source"] for c in notebook["trusted_cells"]}
        if run.executed is not None:
            _write_atomic(os.path.join(job.autograded_dir, name + ".ipynb"), run.executed)
        with tempfile.TemporaryDirectory(prefix="grader-judge-") as capture_dir:
            for file_name in prepared.capture_files:  # names the grader chose, never the sandbox
                if file_name in run.captures:
                    with open(os.path.join(capture_dir, file_name), "wb") as f:
                        f.write(run.captures[file_name])
            if prepared.source is not None:
                cells = [verdicts.judge_cell(c["name"], c["points"], sources[c["name"]],
                                             capture_dir, prepared.seed).to_dict()
                         for c in notebook["graded_cells"]]
            else:
                cells = [verdicts.CellVerdict(c["name"], float(c["points"]), 0.0, []).to_dict()
                         for c in notebook["graded_cells"]]
        result["notebooks"][name] = {
            "problems": prepared.problems, "events": run.events, "seconds": run.seconds, "sandbox": run.sandbox,
            "cells": cells, "score": sum(c["score"] for c in cells),
            "max_score": sum(c["points"] for c in cells)}
    result["score"] = sum(n["score"] for n in result["notebooks"].values())
    result["max_score"] = sum(n["max_score"] for n in result["notebooks"].values())
    save_result(job.autograded_dir, result)
    return result


def save_result(out_dir, result):
    """grader.log, then the result file, each written atomically (the result file marks the work done)."""
    _write_log(out_dir, result)
    _write_atomic(os.path.join(out_dir, RESULT_FILE), json.dumps(result, indent=1))


def _write_log(out_dir, result):
    lines = [f"{result['student']} / {result['assignment']}: {result['score']:g} / {result['max_score']:g}"]
    if result.get("late"):  # recorded by the course's late policy (grader/course/late.py)
        lines.append(f"  {result['late']['summary']}")
    for name, nb in result["notebooks"].items():
        lines.append(f"[{name}] ran in {nb['seconds']} s" + (f", sandbox: {nb['sandbox']}" if nb.get("sandbox") else ""))
        lines += [f"  problem: {p}" for p in nb["problems"]] + [f"  event: {e}" for e in nb["events"]]
        for cell in nb["cells"]:
            lines.append(f"  {cell['grade_id']}: {cell['score']:g} / {cell['points']:g}")
            lines += [f"    {case['message']}" for case in cell["cases"]]
    _write_atomic(os.path.join(out_dir, "grader.log"), "\n".join(lines) + "\n")
