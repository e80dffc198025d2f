"""Late work: submission times kept by both collectors, and the course's nbgrader late-penalty
plugin (built-in or custom) applied to the kit's grades as nbgrader's autograde applies it."""

import csv
import datetime
import os
import zipfile

import nbformat
import pytest

from grader import course
from grader.__main__ import main
from grader.course import late

ASSIGNMENT = "attention"
DUE = datetime.datetime(2026, 1, 10, 12, 0, tzinfo=datetime.timezone.utc)
# A custom policy in the course folder, as a course configures one for nbgrader:
# one point per started hour late.
PER_HOUR = '''import math
from nbgrader.plugins import BasePlugin


class PerHour(BasePlugin):
    """one point per started hour late"""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return math.ceil(total_seconds_late / 3600)
'''


def set_policy(path, *lines):
    """The course's nbgrader_config.py as `setup` wrote it, plus the late policy `lines`."""
    config = os.path.join(path, "nbgrader_config.py")
    with open(config) as f:
        text = f.read().split("# late policy\n")[0]
    with open(config, "w") as f:
        f.write(text + "# late policy\n" + "".join(line + "\n" for line in lines))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Four correct submissions (12 points each) of a course due at DUE, graded with no late policy."""
    root = tmp_path_factory.mktemp("late")
    path = course.setup(str(root / "course"), assignments=[ASSIGNMENT])
    release_dir = course.generate(path, ASSIGNMENT)
    course.nbgrader(path, "db", "assignment", "add", ASSIGNMENT, f"--duedate={DUE:%Y-%m-%d %H:%M:%S} UTC")
    with open(os.path.join(path, "late_policy.py"), "w") as f:
        f.write(PER_HOUR)
    solution = nbformat.writes(nbformat.read(os.path.join(path, "source", ASSIGNMENT, "attention.ipynb"),
                                             as_version=4))
    inbox = root / "inbox"
    # "ontime": the file's modification time, an hour early. "overdue": nbgrader's timestamp.txt
    # beside the notebook (as the exchange writes it), 3 h 30 min late.
    for student in ("ontime", "overdue"):
        (inbox / student).mkdir(parents=True)
        (inbox / student / "attention.ipynb").write_text(solution)
    early = (DUE - datetime.timedelta(hours=1)).timestamp()
    os.utime(inbox / "ontime" / "attention.ipynb", (early, early))
    (inbox / "overdue" / "timestamp.txt").write_text("2026-01-10 15:30:00.000000 UTC")
    course.collect(path, ASSIGNMENT, str(inbox))
    # Canvas: smithbob's file is marked late and stored 30 min after the due date; doejane's
    # is marked late but stored before it (a warning: how late cannot be told).
    archive = root / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("smithbob_LATE_222_333_attention.ipynb", (2026, 1, 10, 12, 30, 0)), solution)
        zf.writestr(zipfile.ZipInfo("doejane_LATE_444_555_attention.ipynb", (2026, 1, 10, 11, 0, 0)), solution)
    students, warnings = course.collect_zip(path, ASSIGNMENT, str(archive))
    assert students == ["doejane", "smithbob"]
    run = course.autograde(path, ASSIGNMENT, workers=2, progress=False)
    assert not run.not_graded and len(run) == 4
    return path, warnings


def regrade(path):
    """autograde again: nothing is run again, the late policy is applied afresh."""
    run = course.autograde(path, ASSIGNMENT, workers=2, progress=False)
    return {r["student"]: r for r in run}


def exported(path):
    main(["export", path, ASSIGNMENT])
    with open(os.path.join(path, "exports", "grades.csv")) as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.mark.long  # four submissions graded in the sandbox: `make test-long`
def test_collectors_keep_each_submission_time(graded):
    path, warnings = graded
    times = {s: late.read_timestamp(os.path.join(path, "submitted", s, ASSIGNMENT))
             for s in ("ontime", "overdue", "smithbob", "doejane")}
    assert times == {"ontime": datetime.datetime(2026, 1, 10, 11, 0), "overdue": datetime.datetime(2026, 1, 10, 15, 30),
                     "smithbob": datetime.datetime(2026, 1, 10, 12, 30),
                     "doejane": datetime.datetime(2026, 1, 10, 11, 0)}
    with course.gradebook(path) as gb:
        assert {s: gb.find_submission(ASSIGNMENT, s).timestamp for s in times} == times
    assert len(warnings) == 1 and "doejane_LATE_444_555_attention.ipynb" in warnings[0]
    assert "Marked late by the LMS" in warnings[0] and "not after the due date" in warnings[0]


@pytest.mark.long  # four submissions graded in the sandbox: `make test-long`
def test_nbgrader_zero_method(graded):
    path, _ = graded
    set_policy(path, 'c.LateSubmissionPlugin.penalty_method = "zero"')
    results = regrade(path)
    assert results["overdue"]["late"]["penalties"] == {"attention": 12.0}
    assert results["smithbob"]["late"]["penalty"] == 12.0
    assert results["ontime"].get("late") is None and results["doejane"].get("late") is None
    assert "penalty_method='zero'" in results["overdue"]["late"]["summary"]
    rows = exported(path)
    assert {s: (row["raw_score"], row["late_submission_penalty"], row["score"]) for s, row in rows.items()} == {
        "ontime": ("12.0", "0.0", "12.0"), "overdue": ("12.0", "12.0", "0.0"),
        "smithbob": ("12.0", "12.0", "0.0"), "doejane": ("12.0", "0.0", "12.0")}
    assert rows["overdue"]["timestamp"] == "2026-01-10 15:30:00" and rows["overdue"]["duedate"] == "2026-01-10 12:00:00"


@pytest.mark.long  # four submissions graded in the sandbox: `make test-long`
def test_custom_plugin_from_the_course_folder(graded):
    path, _ = graded
    set_policy(path, 'c.AssignLatePenalties.plugin_class = "late_policy.PerHour"')
    results = regrade(path)
    # 3 h 30 min late: 4 started hours; 30 min late: 1.
    assert results["overdue"]["late"]["penalty"] == 4.0 and results["smithbob"]["late"]["penalty"] == 1.0
    assert results["ontime"].get("late") is None
    rows = exported(path)
    assert {s: (row["late_submission_penalty"], row["score"]) for s, row in rows.items()} == {
        "ontime": ("0.0", "12.0"), "overdue": ("4.0", "8.0"), "smithbob": ("1.0", "11.0"), "doejane": ("0.0", "12.0")}
    # The student reads why: in the feedback and in grader.log.
    main(["feedback", path, ASSIGNMENT])
    with open(os.path.join(path, "feedback", "overdue", ASSIGNMENT, "attention.html")) as f:
        html = f.read()
    assert "late by 3 h 30 min" in html and "penalty 4 points by late_policy.PerHour" in html
    assert "Score after the penalty: 8 / 12" in html
    with open(os.path.join(path, "autograded", "overdue", ASSIGNMENT, "grader.log")) as f:
        assert "late by 3 h 30 min (submitted 2026-01-10 15:30:00 UTC, due 2026-01-10 12:00:00 UTC)" in f.read()
    with open(os.path.join(path, "feedback", "ontime", ASSIGNMENT, "attention.html")) as f:
        assert "Late submission" not in f.read()


@pytest.mark.long  # four submissions graded in the sandbox: `make test-long`
def test_a_policy_change_is_undone_when_the_work_is_no_longer_late(graded):
    path, _ = graded
    set_policy(path, 'c.LateSubmissionPlugin.penalty_method = "zero"')
    # An extension (nbgrader's, in the gradebook) puts "overdue" within its due date.
    with course.gradebook(path) as gb:
        gb.find_submission(ASSIGNMENT, "overdue").extension = datetime.timedelta(hours=4)
        gb.db.commit()
    results = regrade(path)
    assert results["overdue"]["late"] is None and results["smithbob"]["late"]["penalty"] == 12.0
    assert exported(path)["overdue"]["late_submission_penalty"] == "0.0"
    with course.gradebook(path) as gb:
        gb.find_submission(ASSIGNMENT, "overdue").extension = None
        gb.db.commit()


def test_an_unreadable_timestamp_is_named(tmp_path):
    (tmp_path / "timestamp.txt").write_text("yesterday-ish")
    with pytest.raises(ValueError, match=r"timestamp.txt holds 'yesterday-ish', not a time"):
        late.read_timestamp(str(tmp_path))
