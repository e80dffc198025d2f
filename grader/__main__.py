"""python -m grader setup|release|collect|autograde|feedback|export COURSE ..."""

import argparse
import os
import sys

from cluster import executor as cluster_executor
from grader import course, sandbox


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
    for name, text in (("release", "generate the student version (nbgrader generate_assignment)"),
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
    grade.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="run student code WITHOUT isolation (only for trusted notebooks)")
    check = commands.add_parser("check", help="grade each assignment's source notebook (full marks "
                                "expected) and release (zero expected) in the sandbox")
    check.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: every assignment")
    new = commands.add_parser("new-assignment", help="create assignments/NAME/ from a skeleton "
                              "(or under $GRADER_ASSIGNMENTS)")
    new.add_argument("name")
    args = parser.parse_args(argv)
    if args.backend:
        select_backend(args.backend)

    if args.command == "setup":
        print(course.setup(args.course, args.course_id, gradebook_url=args.gradebook_url))
    elif args.command == "release":
        print(course.release(args.course, args.assignment))
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
            course.autograde(args.course, args.assignment, workers=args.workers, force=args.force,
                             unsafe=args.unsafe_no_sandbox, executor=args.executor,
                             ray_address=args.ray_address)
        except sandbox.SandboxUnavailable as error:
            sys.exit(f"error: {error}")
        print(course.grade_table(args.course, args.assignment))
    elif args.command == "feedback":
        print("\n".join(course.feedback(args.course, args.assignment)))
    elif args.command == "export":
        print(course.export(args.course, args.assignment))
    elif args.command == "check":
        from grader import check
        try:
            wrong = check.check(args.assignments)
        except (KeyError, FileNotFoundError) as error:
            sys.exit(f"error: {error.args[0]}")
        if wrong:
            sys.exit(f"graded wrong (inconsistent, source not full marks, or release not zero): "
                     f"{', '.join(wrong)}")
    elif args.command == "new-assignment":
        from grader import scaffold
        try:
            print(scaffold.new_assignment(args.name))
        except (ValueError, FileExistsError) as error:
            sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
