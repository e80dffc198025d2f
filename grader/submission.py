"""Grade one student's submission of one assignment.

Stages, nbgrader-style: read the notebook -> restore the trusted cells ->
execute in the sandbox (worker process) -> judge the captures and write the
result file atomically (main process; the result file marks the work as done).
"""

import copy
import json
import os
import secrets
import shutil
import tempfile

import nbformat

from grader import execute, sandbox

MAX_NOTEBOOK_BYTES = 20 * 2**20
RESULT_FILE = "grader_result.json"


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


def restore_trusted_cells(nb, trusted_cells):
    """Put back every locked cell (source and nbgrader metadata) as released.

    `trusted_cells` is the source notebook's locked cells in order:
    [{"name", "source", "cell_type", "nbgrader"}]. Edited cells are restored,
    duplicates of a locked cell dropped, deleted ones re-inserted just before the
    next locked cell (after the student's solution). Returns messages for the student.
    """
    problems = []
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
            if cell.source != original["source"] or cell.cell_type != original["cell_type"]:
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
        problems.append(f"locked cell {original['name']!r} was missing; it was put back")
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


def execute_submission(job):
    """Worker stage: run each notebook of `job` in the sandbox; returns where its captures are.

    Workers import neither the reference nor Keras; verdicts are computed by
    `judge_submission` in the grader's main process.
    """
    slot = job.get("slot", 0)
    os.makedirs(job["autograded_dir"], exist_ok=True)
    runs = {}
    for notebook in job["notebooks"]:
        name = notebook["name"]
        nb, problems = read_submission(os.path.join(job["submitted_dir"], name + ".ipynb"))
        run = {"problems": problems, "events": [], "seconds": 0.0, "capture_dir": None, "seed": None}
        if nb is not None:
            problems += restore_trusted_cells(nb, notebook["trusted_cells"])
            run["capture_dir"] = tempfile.mkdtemp(prefix="capture-", dir=job["work_dir"])
            if os.geteuid() == 0:
                os.chown(run["capture_dir"], sandbox.sandbox_uid(slot), sandbox.sandbox_uid(slot))
            run["seed"] = secrets.randbits(62)
            execution = execute.run_notebook(
                nb, support_files=job["support_files"], seed=run["seed"],
                capture_dir=run["capture_dir"], limits=sandbox.Limits(**job["limits"]),
                slot=slot, unsafe=job["unsafe"], work_dir=job["work_dir"])
            run["events"], run["seconds"] = execution.events, execution.seconds
            nbformat.write(nb, os.path.join(job["autograded_dir"], name + ".ipynb"))
        runs[name] = run
    return runs


def judge_submission(job, runs):
    """Main-process stage: judge the captures, save the result atomically (marks it done)."""
    from grader import verdicts  # imports the reference; only the main process needs it

    result = {"student": job["student"], "assignment": job["assignment"], "notebooks": {}}
    for notebook in job["notebooks"]:
        run = runs[notebook["name"]]
        sources = {c["name"]: c["source"] for c in notebook["trusted_cells"]}
        if run["capture_dir"]:
            cells = [verdicts.judge_cell(c["name"], c["points"], sources[c["name"]],
                                         run["capture_dir"], run["seed"]).to_dict()
                     for c in notebook["graded_cells"]]
            shutil.rmtree(run["capture_dir"], ignore_errors=True)
        else:
            cells = [verdicts.CellVerdict(c["name"], float(c["points"]), 0.0, []).to_dict()
                     for c in notebook["graded_cells"]]
        result["notebooks"][notebook["name"]] = {
            "problems": run["problems"], "events": run["events"], "seconds": run["seconds"],
            "cells": cells, "score": sum(c["score"] for c in cells),
            "max_score": sum(c["points"] for c in cells)}
    result["score"] = sum(n["score"] for n in result["notebooks"].values())
    result["max_score"] = sum(n["max_score"] for n in result["notebooks"].values())
    _write_log(job["autograded_dir"], result)
    _write_atomic(os.path.join(job["autograded_dir"], RESULT_FILE), json.dumps(result, indent=1))
    return result


def _write_log(out_dir, result):
    lines = [f"{result['student']} / {result['assignment']}: {result['score']:g} / {result['max_score']:g}"]
    for name, nb in result["notebooks"].items():
        lines.append(f"[{name}] ran in {nb['seconds']} s")
        lines += [f"  problem: {p}" for p in nb["problems"]] + [f"  event: {e}" for e in nb["events"]]
        for cell in nb["cells"]:
            lines.append(f"  {cell['grade_id']}: {cell['score']:g} / {cell['points']:g}")
            lines += [f"    {case['message']}" for case in cell["cases"]]
    _write_atomic(os.path.join(out_dir, "grader.log"), "\n".join(lines) + "\n")
