"""The Gradescope autograder zip: `build` makes it (`python -m grader gradescope ASSIGNMENT`);
`grade` is what its `run_autograder` runs for each submission in Gradescope's container
(`python -m grader gradescope-run`).

Gradescope unpacks the zip into /autograder/source/. It holds:

* `setup.sh`, `run_autograder`: Gradescope's two entry points (the files beside this module);
* `kit/`: the kit's source (grader, reference_impl, cluster, and pyproject.toml with its exact
  pins) and the assignment's folder, references and bug catalogue included (they stay in
  the grader's process; students never see the zip);
* `course/`: an nbgrader course with the assignment generated (source, release, gradebook)
  when the zip was built, so the container grades exactly the released cells;
* `gradescope.json`: the assignment's name and the visibility of its secret-input tests.

A submission goes through the kit's own stages (`grader.submission`), as in
`python -m grader autograde`: locked cells restored from the gradebook, a fresh secret
seed, the notebook run in the sandbox, its captures judged in this process against the
references, mismatches compared with the bug catalogue. The root (/autograder) is
`--root` or $GRADER_GRADESCOPE_ROOT, so the unpacked bundle runs anywhere for testing.
"""

import json
import math
import os
import shutil
import stat
import tempfile
import time
import zipfile

from grader import assignment as assignments, course, sandbox, submission
from grader.course.grading import choose_sandbox
from grader.gradescope.results import from_grader_result
from grader.limits import assignment_limits
from lms.gradescope import ORDERS

ROOT_VARIABLE = "GRADER_GRADESCOPE_ROOT"
DEFAULT_ROOT = "/autograder"
CONFIG_FILE = "gradescope.json"
ENTRY_POINTS = ("setup.sh", "run_autograder")
KIT = ("grader", "reference_impl", "cluster", "lms", "pyproject.toml", "README.md")
STUDENT = "submission"  # Gradescope grades one submission per container
HERE = os.path.dirname(os.path.abspath(__file__))


def leaderboard_problems(assignment):
    """What is wrong with the assignment's declared leaderboard columns (leaderboard.py)."""
    problems, names = [], set()
    for index, metric in enumerate(assignment.leaderboard):
        where = f"leaderboard.py LEADERBOARD[{index}]"
        if not isinstance(metric, dict) or not {"name", "case", "value"} <= set(metric):
            problems.append(f"{where} must be a dict with name, case, value and optionally order")
            continue
        if metric["case"] not in assignment.case_functions:
            problems.append(f"{where} reads case {metric['case']!r}, which no graded cell captures")
        if not callable(metric["value"]):
            problems.append(f"{where}: value must be a function (outputs, expected, calls) -> number")
        if metric.get("order", "desc") not in ORDERS:
            problems.append(f"{where}: order must be one of {', '.join(ORDERS)}")
        if metric["name"] in names:
            problems.append(f"{where}: a second column named {metric['name']!r}")
        names.add(metric["name"])
    return problems


def _add(archive, path, name):
    """Add the file or folder `path` as `name`, keeping the executable bit, without caches."""
    if os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            if entry != "__pycache__" and not entry.startswith("."):
                _add(archive, os.path.join(path, entry), f"{name}/{entry}")
        return
    info = zipfile.ZipInfo.from_file(path, name)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100755 if os.access(path, os.X_OK) else 0o100644) << 16
    with open(path, "rb") as f:
        archive.writestr(info, f.read())


def build(name, out=None, secret_visibility="after_published"):
    """Write the Gradescope autograder zip for assignment `name` (default ./<name>-gradescope.zip)."""
    assignment = assignments.load(name)
    assignment.validate()
    problems = leaderboard_problems(assignment)
    if problems:
        raise ValueError(f"assignment {name} ({assignment.folder}):\n  " + "\n  ".join(problems))
    out = os.path.abspath(out or f"{name}-gradescope.zip")
    with tempfile.TemporaryDirectory(prefix="gradescope-build-") as stage:
        path = course.setup(os.path.join(stage, "course"), assignments=[name])
        course.generate(path, name)
        with zipfile.ZipFile(out, "w") as archive:
            for entry in ENTRY_POINTS:
                _add(archive, os.path.join(HERE, entry), entry)
            for entry in KIT:
                _add(archive, os.path.join(course.REPO, entry), f"kit/{entry}")
            _add(archive, assignment.folder, f"kit/assignments/{name}")
            for entry in ("nbgrader_config.py", "gradebook.db", "source", "release"):
                _add(archive, os.path.join(path, entry), f"course/{entry}")
            archive.writestr(CONFIG_FILE, json.dumps({"assignment": name,
                                                      "secret_visibility": secret_visibility}))
    return out


def _submitted_notebooks(folder):
    """The notebooks (regular files, links not followed) anywhere in the submission, shallowest first."""
    found = []
    for directory, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".")]  # .ipynb_checkpoints and the like
        found += [os.path.join(directory, f) for f in files if f.endswith(".ipynb")
                  and stat.S_ISREG(os.lstat(os.path.join(directory, f)).st_mode)]
    return sorted(found, key=lambda path: (path.count(os.sep), path))


def collect_submission(course_dir, name, submission_dir, inbox):
    """Collect Gradescope's submission folder as the one student's; {notebook: note} where a
    notebook was graded under its released name."""
    expected = sorted(f[:-len(".ipynb")] for f in os.listdir(os.path.join(course_dir, "release", name))
                      if f.endswith(".ipynb"))
    found = _submitted_notebooks(submission_dir)
    target = os.path.join(inbox, STUDENT)
    os.makedirs(target)
    notes = {}
    for notebook in expected:
        exact = [path for path in found if os.path.basename(path) == notebook + ".ipynb"]
        if exact:
            chosen = exact[0]
        elif len(expected) == 1 and len(found) == 1:  # a renamed upload, e.g. attention (1).ipynb
            chosen = found[0]
            notes[notebook] = (f"graded {os.path.relpath(chosen, submission_dir)} as {notebook}.ipynb "
                               f"(the assignment's notebook); submit it under that name")
        else:
            continue  # graded as missing, with a message saying so
        with sandbox.open_untrusted(chosen) as source, open(os.path.join(target, notebook + ".ipynb"), "wb") as f:
            f.write(source.read(submission.MAX_NOTEBOOK_BYTES + 1))  # a larger one is refused when read
    course.collect(course_dir, name, inbox)
    return notes


def leaderboard(assignment, job, runs):
    """The declared leaderboard columns, [{name, value, order}], and notes on those left out.

    Each column's `value(outputs, expected, calls)` reads its case's captured outputs (checked
    as for grading), the reference's outputs on the same secret inputs, and those inputs, so a
    column can score what the student's code computed on data it never saw (a training
    outcome against held-out labels, an error against the reference).
    """
    from grader import verdicts  # the references: this process only
    entries, notes = [], []
    for metric in assignment.leaderboard:
        case, seed, data = metric["case"], None, None
        for notebook, prepared in job.prepared.items():
            if case + ".npz" in runs[notebook].captures:
                seed, data = prepared.seed, runs[notebook].captures[case + ".npz"]
        if data is None:
            notes.append(f"leaderboard {metric['name']!r}: no outputs of {case} were recorded")
            continue
        with tempfile.TemporaryDirectory(prefix="grader-leaderboard-") as folder:
            path = os.path.join(folder, case + ".npz")
            with open(path, "wb") as f:
                f.write(data)
            try:
                got = verdicts.load_capture(path)
                function = assignment.case_functions[case]
                value = float(metric["value"](got, assignments.reference_outputs(assignment, case, function, seed),
                                              assignment.draw_calls(case, seed)))
            except Exception as error:  # noqa: BLE001 - the student's outputs did not fit the metric
                notes.append(f"leaderboard {metric['name']!r}: not computed ({type(error).__name__}: "
                             f"{str(error)[:200]})")
                continue
        if not math.isfinite(value):
            notes.append(f"leaderboard {metric['name']!r}: not computed (the value is {value})")
            continue
        entries.append({"name": metric["name"], "value": value, "order": metric.get("order", "desc")})
    return entries, notes


def grade(root=None):
    """Grade ROOT/submission as the bundle in ROOT/source says; write ROOT/results/results.json.

    A fault of the grader or the machine (the sandbox cannot start, say) raises, and no
    results.json is written: Gradescope then reports that the autograder failed, instead
    of a zero the student did not earn.
    """
    root = os.path.abspath(root or os.environ.get(ROOT_VARIABLE) or DEFAULT_ROOT)
    started = time.monotonic()
    source = os.path.join(root, "source")
    with open(os.path.join(source, CONFIG_FILE)) as f:
        config = json.load(f)
    name = config["assignment"]
    assignment = assignments.load(name)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as work:
        path = shutil.copytree(os.path.join(source, "course"), os.path.join(work, "course"))
        notes = collect_submission(path, name, os.path.join(root, "submission"), os.path.join(work, "inbox"))
        # Under the user sandbox (no user namespaces here), the bundle is closed to other users first.
        backend, _ = choose_sandbox(source, unsafe=False, executor="local", requested=None)
        (job,) = course.autograde_jobs(path, name, assignment_limits(name), unsafe=False, sandbox_backend=backend)
        job = submission.prepare_submission(job)
        runs = submission.execute_submission(job, course.kernel_files(path, name))
        result = submission.judge_submission(job, runs)
        entries, leaderboard_notes = leaderboard(assignment, job, runs) if assignment.leaderboard else (None, [])
    for notebook, note in notes.items():
        result["notebooks"][notebook]["problems"].insert(0, note)
    results = from_grader_result(result, secret_visibility=config["secret_visibility"], leaderboard=entries,
                                 execution_time=round(time.monotonic() - started, 1))
    if leaderboard_notes:
        results["output"] += "\n" + "\n".join(leaderboard_notes)
    os.makedirs(os.path.join(root, "results"), exist_ok=True)
    with open(os.path.join(root, "results", "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return results
