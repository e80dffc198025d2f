"""Course directory commands over nbgrader's layout and gradebook.

One module per stage: `layout` (the course directory, its nbgrader config and
gradebook, setting up and generating assignments), `inbox` (collecting
submissions), `late` (submission times and nbgrader's late penalties),
`grading` (autograding) and `reports` (feedback and exports).
Everything is re-exported here, so `from grader import course` is the one
import a caller needs.
"""

from grader.course.grading import (AutogradeRun, autograde, autograde_jobs, record_grades, kernel_files,
                                   trusted_notebooks)
from grader.course.inbox import (CANVAS_PATTERN, CollectError, changed_students, collect, collect_zip,
                                 grade_again, lms_archives, SafeNameCollector, submitted_files,
                                 submitted_students, unsafe_name)
from grader.course.layout import (CONFIG, REPO, RUNTIME_DIR, assignment_cases, db_url,
                                  generate, gradebook, nbgrader, release, runtime_files, setup, write_public_checks)
from grader.course.reports import NotGradedError, export, feedback, grade_table, load_results

__all__ = ["assignment_cases", "autograde", "autograde_jobs", "AutogradeRun",
           "CANVAS_PATTERN", "changed_students", "collect", "collect_zip", "CollectError", "CONFIG",
           "db_url", "export", "feedback", "generate", "grade_again", "grade_table", "gradebook",
           "lms_archives", "load_results", "nbgrader", "NotGradedError",
           "record_grades", "release", "kernel_files", "REPO", "RUNTIME_DIR", "runtime_files",
           "SafeNameCollector", "setup", "submitted_files", "submitted_students", "trusted_notebooks",
           "unsafe_name", "write_public_checks"]
