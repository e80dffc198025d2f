"""python -m grader setup|generate|collect|autograde|feedback|export COURSE ASSIGNMENT, or
check|new-assignment|measure|gradescope ASSIGNMENT"""

import argparse
import json
import os
import sys

from nbgrader.api import MissingEntry

from cluster import executor as cluster_executor
from grader import course, limits, sandbox
from lms.gradescope import VISIBILITIES


BACKENDS = ("tensorflow", "jax")


def select_backend(backend):
    """Grade under `backend`: the sandbox gives kernels the grader's KERAS_BACKEND, and the
    references and bug runs in this process read it when Keras is first imported."""
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != backend:
        sys.exit(f"error: Keras is already running on {keras.backend.backend()}; "
                 f"set KERAS_BACKEND={backend} before starting the grader instead")
    os.environ["KERAS_BACKEND"] = backend


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    parser.add_argument("--backend", choices=BACKENDS,
                        help="the Keras backend for the kernels and the references (default: "
                             "$KERAS_BACKEND, else tensorflow)")
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="create an nbgrader course directory from assignments/")
    setup.add_argument("course")
    setup.add_argument("--course-id", default="lm-course")
    setup.add_argument("--gradebook-url", help="SQLAlchemy URL of the gradebook, e.g. "
                       "postgresql://grader@db.example.org/course (default: SQLite in the course)")
    for name, text in (("generate", "generate the student version (nbgrader generate_assignment)"),
                       ("release", "old name of generate (it is not nbgrader's release_assignment)"),
                       ("feedback", "write per-student HTML feedback"),
                       ("export", "write nbgrader's CSV and Gradescope results.json files")):
        command = commands.add_parser(name, help=text)
        command.add_argument("course")
        command.add_argument("assignment")
    collect = commands.add_parser(
        "collect", help="copy INBOX/<student>/*.ipynb, or LMS zip downloads (--zip), into submitted/")
    collect.add_argument("course")
    collect.add_argument("assignment")
    collect.add_argument("inbox", nargs="?", help="a folder of <student>/<notebook>.ipynb")
    collect.add_argument("--zip", metavar="ARCHIVE", help="an LMS download (.zip) or a folder of them, "
                         "collected with nbgrader zip_collect")
    collect.add_argument("--pattern", default=course.CANVAS_PATTERN,
                         help="regular expression with (?P<student_id>...) and (?P<file_id>...) for "
                         "the file names in the archive (default: Canvas's naming)")
    grade = commands.add_parser("autograde", help="grade every submission in the sandbox")
    grade.add_argument("course")
    grade.add_argument("assignment")
    grade.add_argument("--workers", type=int, default=None, help="parallel notebooks (default: cores)")
    grade.add_argument("--force", action="store_true", help="grade again even if already graded")
    grade.add_argument("--executor", choices=cluster_executor.EXECUTORS, default="local",
                       help="local processes, or one Ray task per submission on a Ray cluster")
    grade.add_argument("--ray-address", help="the Ray cluster to use with --executor ray "
                       "(e.g. ray://head:10001 or auto; default: $RAY_ADDRESS or a local Ray)")
    grade.add_argument("--sandbox", choices=("auto", *sandbox.BACKENDS), default=None,
                       help="bwrap (bubblewrap namespaces), user (a separate unprivileged user with a "
                       "seccomp filter, for containers without user namespaces; root only), or auto: "
                       "bwrap where it starts, else user (default: $GRADER_SANDBOX, else auto)")
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run student code WITHOUT isolation (only for trusted notebooks)")
    check = commands.add_parser("check", help="grade each assignment's source notebook (full marks "
                                "expected) and release (zero expected) in the sandbox")
    check.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: every assignment")
    check.add_argument("--seeds", type=int, default=0,
                       help="also grade every catalogued bug and alternative on this many secret seeds, "
                            "in this process: each bug must lose the same cells on every seed")
    check.add_argument("--no-sandbox", action="store_true",
                       help="skip grading the source and the release in the sandbox")
    new = commands.add_parser("new-assignment", help="create assignments/NAME/ from a skeleton "
                              "(or under $GRADER_ASSIGNMENTS)")
    new.add_argument("name")
    measure = commands.add_parser("measure", help="time the assignment's solution in the sandbox and "
                                  "record its time limits in assignments/ASSIGNMENT/grading.json")
    measure.add_argument("assignment")
    measure.add_argument("--multiple", type=float, default=limits.MULTIPLE,
                         help="limits = this many times the reference run (default: %(default)s)")
    gradescope = commands.add_parser("gradescope", help="build a Gradescope autograder zip that grades "
                                     "ASSIGNMENT with this grader")
    gradescope.add_argument("assignment")
    gradescope.add_argument("--out", help="the zip to write (default: ASSIGNMENT-gradescope.zip)")
    gradescope.add_argument("--secret-tests", choices=VISIBILITIES, default="after_published",
                            help="Gradescope visibility of the tests, which run on secret inputs "
                                 "(default: %(default)s)")
    gradescope_run = commands.add_parser("gradescope-run", help="grade ROOT/submission into "
                                         "ROOT/results/results.json (what the zip's run_autograder runs)")
    gradescope_run.add_argument("--root", help="Gradescope's folder (default: $GRADER_GRADESCOPE_ROOT, "
                                "else /autograder)")
    args = parser.parse_args(argv)
    if args.backend:
        select_backend(args.backend)
    if args.command == "measure":
        from grader import check
        print(json.dumps(check.measure(args.assignment, args.multiple), indent=1))
        return
    if args.command == "check":
        from grader import check
        try:
            wrong = check.check(args.assignments, seeds=args.seeds, in_sandbox=not args.no_sandbox)
        except (KeyError, FileNotFoundError) as error:
            sys.exit(f"error: {error.args[0]}")
        if wrong:
            sys.exit(f"graded wrong (inconsistent, source not full marks, release not zero, or a "
                     f"catalogue problem): "
                     f"{', '.join(wrong)}")
        return
    if args.command in ("gradescope", "gradescope-run"):
        gradescope_command(args)
        return
    if args.command == "new-assignment":
        from grader import scaffold
        try:
            print(scaffold.new_assignment(args.name))
        except (ValueError, FileExistsError) as error:
            sys.exit(f"error: {error}")
        return
    args.course = os.path.abspath(args.course)  # relative and absolute paths alike

    if args.command == "setup":
        print(course.setup(args.course, args.course_id, gradebook_url=args.gradebook_url))
    elif args.command in ("generate", "release"):
        if args.command == "release":
            print("warning: `python -m grader release` is now `python -m grader generate` (nbgrader's "
                  "generate_assignment); the old name will go", file=sys.stderr)
        print(course.generate(args.course, args.assignment))
    elif args.command == "collect":
        if (args.inbox is None) == (args.zip is None):
            parser.error("collect takes either INBOX or --zip ARCHIVE")
        if args.inbox:
            print("\n".join(course.collect(args.course, args.assignment, args.inbox)))
            return
        try:
            students, warnings = course.collect_zip(args.course, args.assignment, args.zip, args.pattern)
        except course.CollectError as error:
            sys.exit(f"error: {error}")
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if not students:
            sys.exit(f"error: no submission in {args.zip} matched the file name pattern "
                     f"{args.pattern!r} and a released notebook; nothing was collected")
        print("\n".join(students))
    elif args.command == "autograde":
        try:
            run = course.autograde(args.course, args.assignment, workers=args.workers, force=args.force,
                                   unsafe=args.unsafe_no_sandbox, executor=args.executor,
                                   ray_address=args.ray_address, sandbox_backend=args.sandbox)
        except sandbox.SandboxUnavailable as error:
            sys.exit(f"error: {error}")
        except MissingEntry:
            sys.exit(f"error: {args.assignment} is not in the gradebook of {args.course}; generate it "
                     f"first: python -m grader generate {args.course} {args.assignment}")
        print(course.grade_table(args.course, args.assignment, run.not_graded))
        failure = autograde_failure(run, args.course, args.assignment)
        if failure:
            sys.exit(failure)
    elif args.command == "feedback":
        print("\n".join(course.feedback(args.course, args.assignment)))
    elif args.command == "export":
        try:
            print(course.export(args.course, args.assignment))
        except course.NotGradedError as error:
            sys.exit(f"error: {error}")


def gradescope_command(args):
    from grader.gradescope import autograder
    if args.command == "gradescope":
        try:
            print(autograder.build(args.assignment, args.out, args.secret_tests))
        except (KeyError, ValueError, FileNotFoundError) as error:
            sys.exit(f"error: {error.args[0]}")
        return
    try:
        results = autograder.grade(args.root)
    except sandbox.SandboxUnavailable as error:
        sys.exit(f"error: not graded, no results.json written: {error}")
    print(f"{results['score']:g} / {sum(test['max_score'] for test in results['tests']):g} "
          f"in {results['execution_time']:g} s")


def autograde_failure(run, course_dir, assignment):
    """None when every submission was graded; else the message a non-zero exit carries."""
    if run.not_graded:
        lines = [f"  {student}: {reason}" for student, reason in sorted(run.not_graded.items())]
        return (f"error: {len(run.not_graded)} of {len(run.not_graded) + len(run.results)} submissions "
                "were not graded (nothing was recorded for them):\n" + "\n".join(lines) +
                "\nFix the cause and run autograde again; graded students are skipped.")
    if not run.results:
        return (f"error: no submissions of {assignment} in {course_dir}/submitted/<student>/{assignment}/; "
                "collect them first (python -m grader collect)")
    return None


if __name__ == "__main__":
    main()
