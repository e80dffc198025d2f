"""What a graded course hands on: feedback, nbgrader's CSV, Gradescope results, a table."""

import json
import os
import shutil

from grader import submission
from grader.gradescope.results import from_grader_result
from grader.course.inbox import submitted_students
from grader.course.layout import REPO, nbgrader

def load_results(course, assignment):
    results = []
    autograded = os.path.join(course, "autograded")
    for student in sorted(os.listdir(autograded)) if os.path.isdir(autograded) else []:
        path = os.path.join(autograded, student, assignment, submission.RESULT_FILE)
        if os.path.isfile(path):
            with open(path) as f:
                results.append(json.load(f))
    return results


# What nbgrader's release_feedback reads beside each feedback file: the submission's time and
# the secret its exchange keyed the submission by (nbgrader collect copies both into submitted/).
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def feedback(course, assignment):
    """Per-student HTML feedback: feedback/<student>/<assignment>/<notebook>.html, one per notebook.

    These are the names and the folder nbgrader's generate_feedback uses (the kit's file replaces
    its file), so `nbgrader release_feedback` hands the kit's feedback to students through the
    exchange; the submission's timestamp.txt and submission_secret.txt are copied beside it, as
    generate_feedback does.
    """
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    env = Environment(loader=FileSystemLoader(os.path.join(REPO, "grader", "templates")),
                      autoescape=select_autoescape(["html", "j2"]))
    template = env.get_template("feedback.html.j2")
    paths = []
    for result in load_results(course, assignment):
        directory = os.path.join(course, "feedback", result["student"], assignment)
        os.makedirs(directory, exist_ok=True)
        for name in EXCHANGE_FILES:
            kept = os.path.join(course, "submitted", result["student"], assignment, name)
            if os.path.isfile(kept):
                shutil.copy(kept, directory)
        for notebook, verdict in result["notebooks"].items():
            path = os.path.join(directory, notebook + ".html")
            with open(path, "w") as f:
                f.write(template.render(result=result, notebooks={notebook: verdict}))
            paths.append(path)
    return paths


class NotGradedError(RuntimeError):
    """Submissions without a result: exporting now would give them zero."""


def export(course, assignment):
    """nbgrader's CSV (via `nbgrader export`) and a Gradescope results.json per student.

    Refuses (NotGradedError) while a collected submission has no result, since
    nbgrader would export it as zero.
    """
    course = os.path.abspath(course)  # nbgrader runs in the course folder
    graded = {result["student"] for result in load_results(course, assignment)}
    waiting = [s for s in submitted_students(course, assignment) if s not in graded]
    if waiting:
        raise NotGradedError(f"{len(waiting)} submissions of {assignment} are not graded yet "
                             f"({', '.join(waiting[:10])}{', ...' if len(waiting) > 10 else ''}), and "
                             "nbgrader would export them as zero; run autograde until it exits 0, then export")
    exports = os.path.join(course, "exports")
    os.makedirs(exports, exist_ok=True)
    csv_path = os.path.join(exports, "grades.csv")
    nbgrader(course, "export", "--to", csv_path)
    for result in load_results(course, assignment):
        directory = os.path.join(exports, "gradescope", result["student"])
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "results.json"), "w") as f:
            json.dump(from_grader_result(result), f, indent=1)
    return csv_path


def grade_table(course, assignment, not_graded=None):
    """One line per student: the score, or why they were not graded ({student: reason})."""
    lines = {r["student"]: f"{r['student']:<20} {r['score']:>6g} / {r['max_score']:g}" +
             (f"  late: -{r['late']['penalty']:g}" if r.get("late") else "")
             for r in load_results(course, assignment)}
    for student, reason in (not_graded or {}).items():
        lines[student] = f"{student:<20} not graded: {reason}, staff notified"
    return "\n".join(lines[student] for student in sorted(lines))
