"""Course directory commands over nbgrader's layout and gradebook.

One module per stage: `layout` (the course directory, its nbgrader config and
gradebook, setting up and generating assignments), `inbox` (collecting
submissions), `grading` (autograding) and `reports` (feedback and exports).
Everything is re-exported here, so `from grader import course` is the one
import a caller needs.
"""

from grader.course.grading import (autograde, autograde_jobs, record_grades, released_files,
                                   trusted_notebooks)
from grader.course.inbox import (CANVAS_PATTERN, CollectError, changed_students, collect, collect_zip,
                                 grade_again, lms_archives, submitted_files)
from grader.course.layout import (ASSIGNMENTS, CONFIG, REPO, RUNTIME_DIR, assignment_cases, db_url,
                                  gradebook, nbgrader, release, runtime_files, setup, write_public_checks)
from grader.course.reports import export, feedback, gradescope_results, grade_table, load_results

__all__ = ["ASSIGNMENTS", "CANVAS_PATTERN", "CONFIG", "REPO", "RUNTIME_DIR", "CollectError", "assignment_cases",
           "autograde", "autograde_jobs", "changed_students", "collect", "collect_zip", "db_url", "export",
           "feedback", "grade_again", "grade_table", "gradebook", "gradescope_results", "lms_archives",
           "load_results", "nbgrader", "record_grades", "release", "released_files", "runtime_files",
           "setup", "submitted_files", "trusted_notebooks", "write_public_checks"]
