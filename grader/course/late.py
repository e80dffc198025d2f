"""Late work, as nbgrader handles it: each submission's time in `timestamp.txt`, the
assignment's due date in the gradebook, and the course's configured late-penalty plugin.

nbgrader's own `autograde` reads `submitted/<student>/<assignment>/timestamp.txt`,
records it as the submission's timestamp and runs its `AssignLatePenalties`
preprocessor, which asks the configured `LateSubmissionPlugin` (or the class in
`AssignLatePenalties.plugin_class`) for each notebook's penalty. The kit runs that
same preprocessor with the course's `nbgrader_config.py`, so a course keeps its
late policy, built-in or custom, exactly.
"""

import contextlib
import datetime
import os
import sys

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import parse_utc

from grader.course.layout import db_url, gradebook

TIMESTAMP_FILE = "timestamp.txt"
# nbgrader's exchange writes timestamp.txt in this format (Exchange.timestamp_format) in UTC.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


def write_timestamp(directory, when):
    """Write `when` (an aware datetime) to directory/timestamp.txt as nbgrader's exchange does."""
    with open(os.path.join(directory, TIMESTAMP_FILE), "w") as f:
        f.write(when.astimezone(datetime.timezone.utc).strftime(TIMESTAMP_FORMAT))


def read_timestamp(directory):
    """The submission time in directory/timestamp.txt (naive UTC, as nbgrader stores it), or None."""
    path = os.path.join(directory, TIMESTAMP_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError) as error:
        raise ValueError(f"{path} holds {text[:60]!r}, not a time ({error}); write the submission time "
                         f"as nbgrader does, e.g. 2026-12-01 17:05:00.000000 UTC") from None


def collected_again(course, assignment, student):
    """Whether submitted/ now holds another submission than the one graded, by its time.

    nbgrader's `collect --update` replaces a student's folder with their later exchange
    submission (timestamp.txt and all) without telling the kit; the kit's own collectors
    remove the stale result themselves. An unreadable timestamp.txt counts as new: grading
    then stops at it with its message.
    """
    try:
        current = read_timestamp(os.path.join(course, "submitted", student, assignment))
    except ValueError:
        return True
    with gradebook(course) as gb:
        try:
            recorded = gb.find_submission(assignment, student).timestamp
        except MissingEntry:
            return False
    return None not in (current, recorded) and current != recorded


def course_config(course):
    from traitlets.config.loader import PyFileConfigLoader
    return PyFileConfigLoader("nbgrader_config.py", path=course).load_config()


@contextlib.contextmanager
def importable_course(course):
    """The course folder on sys.path while nbgrader resolves a custom plugin class named in its
    config (`AssignLatePenalties.plugin_class = "late_policy.PerHour"`), as `nbgrader` run there would."""
    sys.path.insert(0, course)
    try:
        yield
    finally:
        sys.path.remove(course)


def policy_name(plugin):
    """How feedback names the late policy: nbgrader's method, or the custom class and its docstring."""
    cls = type(plugin)
    if hasattr(plugin, "penalty_method"):
        return f"nbgrader's {cls.__name__}, penalty_method={plugin.penalty_method!r}"
    summary = (cls.__doc__ or "").strip().splitlines()
    return f"{cls.__module__}.{cls.__qualname__}" + (f" ({summary[0]})" if summary else "")


def apply_late_penalties(course, assignment, student, notebooks):
    """Record each notebook's late penalty in the gradebook, as nbgrader's autograde does; returns
    what feedback says about it, or None when the work was not late.

    Runs after the submission's time and grades are committed (the plugin sees each notebook's
    score). Re-running it recomputes from the gradebook, so a changed due date or an extension
    takes effect.
    """
    config = course_config(course)
    with gradebook(course) as gb:
        submitted = gb.find_submission(assignment, student)
        seconds_late = submitted.total_seconds_late
        timestamp, duedate = submitted.timestamp, submitted.duedate
    resources = {"nbgrader": {"assignment": assignment, "student": student, "db_url": db_url(course)}}
    with importable_course(course):
        late = AssignLatePenalties(config=config)  # resolves a custom plugin_class from the course folder
        for notebook in notebooks:  # resets a penalty an earlier run recorded when the work is on time now
            resources["nbgrader"]["notebook"] = notebook
            late.preprocess(nbformat.v4.new_notebook(), resources)
    if seconds_late <= 0:
        return None
    with gradebook(course) as gb:
        penalties = {nb.name: nb.late_submission_penalty or 0.0
                     for nb in gb.find_submission(assignment, student).notebooks}
    penalty, policy = sum(penalties.values()), policy_name(late.plugin_inst)
    submitted_at, due = f"{timestamp:%Y-%m-%d %H:%M:%S} UTC", f"{duedate:%Y-%m-%d %H:%M:%S} UTC"
    return {"submitted": submitted_at, "due": due, "seconds_late": seconds_late, "policy": policy,
            "penalties": penalties, "penalty": penalty,
            "summary": f"late by {late_by(seconds_late)} (submitted {submitted_at}, due {due}): "
                       f"penalty {penalty:g} point{'s' if penalty != 1 else ''} by {policy}"}


def late_by(seconds):
    """'1 d 2 h 5 min' for people; the gradebook keeps the seconds."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (rest, "s"))
                    if n) or "under 1 s"
