"""Grading throughput: `python -m grader` (local processes and Ray) against plain `nbgrader autograde`.

Both grade the same submissions of the attention assignment (correct, a known
bug, partly done and the unchanged stub, repeated to the requested count; the
demo's cheater is left out because plain nbgrader refuses the whole run on its
edited grading metadata),
each in its own fresh course directory. Our grader runs every notebook in a
sandboxed kernel with the secret inputs, `--workers` at a time (default: the
number of cores), either in a local process pool or as Ray tasks on a
single-node Ray started here with `--workers` CPUs (so as many worker
processes); plain nbgrader runs them one after another, unsandboxed, on the
public check path. Prints a Markdown table of submissions per minute, the
date and the machine.

Usage: python -m experiments.grader_throughput [--submissions 40] [--workers N]
       [--graders local ray nbgrader]
"""

import argparse
import datetime
import os
import platform
import tempfile
import time

import nbformat

from cluster.executor import EXECUTORS
from course_demo.sample_students import demo_submissions, write_inbox
from grader import course

ASSIGNMENT = "attention"


def make_course(root, count):
    """A released course with `count` collected submissions; returns its path."""
    path = course.setup(os.path.join(root, "course"), assignments=[ASSIGNMENT])
    release_dir = course.release(path, ASSIGNMENT)
    release_nb = nbformat.read(os.path.join(release_dir, f"{ASSIGNMENT}.ipynb"), as_version=4)
    source_nb = nbformat.read(os.path.join(path, "source", ASSIGNMENT, f"{ASSIGNMENT}.ipynb"),
                              as_version=4)
    demo = demo_submissions(release_nb, source_nb)
    kinds = [demo["ada"][0], demo["ben"][0], demo["chen"][0], release_nb]
    students = {f"student{i:03d}": kinds[i % len(kinds)] for i in range(count)}
    write_inbox(students, os.path.join(root, "inbox"), notebook=f"{ASSIGNMENT}.ipynb")
    course.collect(path, ASSIGNMENT, os.path.join(root, "inbox"))
    return path


def graded_count(path):
    autograded = os.path.join(path, "autograded")
    return sum(os.path.isfile(os.path.join(autograded, s, ASSIGNMENT, f"{ASSIGNMENT}.ipynb"))
               for s in os.listdir(autograded))


def time_ours(root, count, workers, executor="local"):
    path = make_course(root, count)
    if executor == "ray":
        import ray

        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter()
    course.autograde(path, ASSIGNMENT, workers=workers, progress=False, executor=executor)
    return time.perf_counter() - started, graded_count(path)


def time_nbgrader(root, count):
    path = make_course(root, count)
    started = time.perf_counter()
    course.nbgrader(path, "autograde", ASSIGNMENT)
    return time.perf_counter() - started, graded_count(path)


def machine():
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                     platform.processor())
    return f"{platform.node()}: {os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="our grader's parallel notebooks (default: cores)")
    parser.add_argument("--graders", nargs="+", choices=[*EXECUTORS, "nbgrader"], default=[*EXECUTORS, "nbgrader"],
                        help="our grader with each executor, and plain nbgrader")
    args = parser.parse_args(argv)

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="grader-throughput-") as root:
        for grader in args.graders:
            if grader == "nbgrader":
                seconds, graded = time_nbgrader(os.path.join(root, grader), args.submissions)
                rows.append(("nbgrader autograde (no sandbox, one at a time)", graded, seconds))
            else:
                seconds, graded = time_ours(os.path.join(root, grader), args.submissions, args.workers, grader)
                what = f"{args.workers} local processes" if grader == "local" else \
                    f"Ray, one node, {args.workers} worker processes"
                rows.append((f"python -m grader autograde --executor {grader} (sandbox, {what})", graded, seconds))

    print(f"Grading throughput, attention assignment, {args.submissions} submissions")
    print(f"Date: {started:%Y-%m-%d %H:%M} UTC; machine: {machine()}")
    print(f"Load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}")
    print()
    print("| grader | notebooks graded | seconds | submissions / minute |")
    print("|---|---:|---:|---:|")
    for name, graded, seconds in rows:
        print(f"| {name} | {graded} | {seconds:.0f} | {60 * graded / seconds:.1f} |")


if __name__ == "__main__":
    main()
