"""Command line: `python -m benchmarks {suite,baseline,run,report,reveal,limit} --help`.

    python -m benchmarks suite out/glue_builtin           # offline GLUE-style suite
    python -m benchmarks baseline out/subs/tiny --tasks SST-2 CoLA
    python -m benchmarks run out/subs/* --tasks SST-2 CoLA MRPC STS-B RTE \\
        --seeds 0 1 --max-train-examples 2000 --report out/report
    python -m benchmarks report --db out/results.db --output out/report
    python -m benchmarks limit --db out/results.db --per-day 3   # scored submissions per student per day
    python -m benchmarks reveal --db out/results.db --output out/report   # staff: show the private scores
"""

import argparse
import dataclasses
import os
import sys

from benchmarks import tasks
from benchmarks.config import add_options, config_from_options, job_environment
from cluster import executor as cluster_executor


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="GLUE benchmark harness: fine-tune submitted encoders on GLUE tasks, keep every run in a "
        "SQLite database, and write leaderboards (Markdown, HTML), Gradescope results and GLUE server zips.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    suite = commands.add_parser("suite", help="write the offline built-in GLUE-style suite (synthetic labels on real text)")
    suite.add_argument("folder")
    suite.add_argument("--train-size", type=int, default=64)
    suite.add_argument("--dev-size", type=int, default=32)
    suite.add_argument("--test-size", type=int, default=16)

    baseline = commands.add_parser("baseline", help="save a from-scratch reference BERT as a submission")
    baseline.add_argument("folder", help="submission folder to create")
    add_data_arguments(baseline)
    baseline.add_argument("--vocabulary-size", type=int, default=2000)
    baseline.add_argument("--size", default="tiny", help="a named BertBackbone size (BertBackbone.sizes: tiny, mini, small, ...)")
    baseline.add_argument("--hidden-dim", type=int, help="override the size's hidden width")
    baseline.add_argument("--num-layers", type=int, help="override the size's number of layers")

    run = commands.add_parser("run", help="benchmark submissions (skips runs already in the database)")
    run.add_argument("submissions", nargs="+", help="submission folders (a kit preset + metadata.json; see benchmarks/README.md)")
    add_data_arguments(run)
    run.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_options(run, grids=("learning_rate",))
    run.add_argument("--gpu", action="store_true",
                     help="both --mixed-precision and --jit-compile (already the default where the jobs run on GPUs)")
    run.add_argument("--executor", choices=cluster_executor.EXECUTORS, default="local",
                     help="run the fine-tuning jobs here, one after another, or as Ray tasks on a cluster")
    run.add_argument("--jobs-per-gpu", type=int, default=1,
                     help="with --executor ray: fine-tunings sharing each GPU (small models leave a GPU mostly idle)")
    run.add_argument("--ray-address", help="the Ray cluster for --executor ray (default: $RAY_ADDRESS or a local Ray)")
    run.add_argument("--db", default="demo_output/benchmarks/results.db",
                     help="SQLite file, or a database URL (postgresql://user@host/db)")
    run.add_argument("--cache-dir", default="demo_output/benchmarks/tokenized", help="tokenized .npz arrays")
    run.add_argument("--report", help="write the reports into this folder afterwards")
    run.add_argument("--baselines", action="store_true",
                     help="also run the majority-class and bag-of-words baselines on the tasks (seconds)")
    run.add_argument("--no-progress", action="store_true")

    report = commands.add_parser("report", help="write leaderboard.md/.html, Gradescope results.json, GLUE zips")
    report.add_argument("--db", default="demo_output/benchmarks/results.db", help="SQLite file or database URL")
    report.add_argument("--output", default="demo_output/benchmarks/report")
    report.add_argument("--reveal", action="store_true",
                        help="show the private scores in this report only (staff); `reveal` shows them to everyone")

    reveal = commands.add_parser("reveal", help="staff: reveal the private scores (the final ranking) in every report")
    reveal.add_argument("--db", default="demo_output/benchmarks/results.db", help="SQLite file or database URL")
    reveal.add_argument("--output", help="write the reports into this folder afterwards")
    reveal.add_argument("--hide", action="store_true", help="hide them again")

    limit = commands.add_parser("limit", help="staff: scored submissions allowed per student per UTC day")
    limit.add_argument("--db", default="demo_output/benchmarks/results.db", help="SQLite file or database URL")
    limit.add_argument("--per-day", type=int, help="the limit; leave out for no limit")
    return parser


def add_data_arguments(parser):
    parser.add_argument("--glue-dir", default=tasks.DEFAULT_GLUE_DIR, help="glue_data folder (default: $GLUE_DIR or ../shared/glue_data)")
    parser.add_argument("--tasks", nargs="+", default=["SST-2", "CoLA", "MRPC", "STS-B", "RTE"], choices=list(tasks.TASKS))


def command_suite(args):
    from benchmarks.builtin_suite import write_builtin_suite

    write_builtin_suite(args.folder, args.train_size, args.dev_size, args.test_size)
    print(f"wrote the built-in suite to {args.folder}")


def command_baseline(args):
    from benchmarks import submissions
    from reference_impl.bert import BertBackbone

    texts = [text for name in args.tasks for example in tasks.read_split(args.glue_dir, name, "train").texts for text in example]
    config = dict(BertBackbone.sizes[args.size])
    config.pop("vocabulary_size", None)
    if args.hidden_dim:
        config.update(hidden_dim=args.hidden_dim, intermediate_dim=4 * args.hidden_dim)
    if args.num_layers:
        config["num_layers"] = args.num_layers
    name = os.path.basename(os.path.normpath(args.folder))
    submissions.make_baseline_submission(args.folder, texts, name=name, vocabulary_size=args.vocabulary_size, **config)
    print(f"saved baseline submission {name} to {args.folder}")


def command_run(args):
    if args.jobs_per_gpu < 1 or (args.jobs_per_gpu > 1 and args.executor != "ray"):
        sys.exit("error: --jobs-per-gpu takes a count of at least 1, and more than 1 needs --executor ray "
                 "(without --ray-address it starts a Ray on this machine).")
    environment = job_environment(args.jobs_per_gpu)
    if args.executor == "ray":
        # The driver only checks submissions: it must not take a GPU's memory from the jobs.
        os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    else:
        os.environ.update(environment)  # the jobs run in this process; set before Keras starts
    from benchmarks import results, runner

    database = results.ResultsDatabase(args.db)
    # 1/N of a GPU per job where the cluster has GPUs; the workers use the driver's Keras backend.
    executor = cluster_executor.make_executor(
        args.executor, args.ray_address, num_gpus="auto", jobs_per_gpu=args.jobs_per_gpu,
        env_vars=environment | {"KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")})
    if args.baselines:
        from benchmarks import baselines

        baselines.run_baselines(database, args.glue_dir, args.tasks, config_from_options(args))
    for learning_rate in args.learning_rate:
        config = config_from_options(args, learning_rate=learning_rate)
        if args.gpu:
            config = dataclasses.replace(config, mixed_precision=True, jit_compile=True)
        runner.BenchmarkRunner(
            database, args.glue_dir, args.tasks, args.seeds, config, args.cache_dir, progress=not args.no_progress,
            executor=executor,
        ).run(args.submissions)
    for failure in database.failures():
        print(f"error: {failure.submission_name} [{failure.task}]: {failure.error}", file=sys.stderr)
    if args.report:
        write_reports(database, args.report)


def command_report(args):
    write_reports(open_database(args.db), args.output, reveal=args.reveal or None)


def open_database(location):
    from benchmarks import results

    if not results.is_url(location) and not os.path.exists(location):
        sys.exit(f"error: no results database at {location}; run `python -m benchmarks run ...` first.")
    return results.ResultsDatabase(location)


def command_reveal(args):
    database = open_database(args.db)
    database.set_setting("private_revealed", not args.hide)
    print("private scores are now " + ("hidden" if args.hide else "shown in every report; the rank follows them"))
    if args.output:
        write_reports(database, args.output)


def command_limit(args):
    if args.per_day is not None and args.per_day < 1:
        sys.exit("error: --per-day must be at least 1 (leave it out for no limit).")
    open_database(args.db).set_setting("daily_limit", args.per_day)
    print(f"scored submissions per student per UTC day: {args.per_day or 'no limit'}")


def write_reports(database, folder, reveal=None):
    from benchmarks import reports

    written, notes = reports.write_all(database, folder, reveal)
    print(reports.to_markdown(reports.leaderboard(database, reveal=reveal, references=True)))
    for note in notes:
        print(f"note: {note}")
    print(f"reports in {folder}")
    return written


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        {"suite": command_suite, "baseline": command_baseline, "run": command_run, "report": command_report,
         "reveal": command_reveal, "limit": command_limit}[args.command](args)
    except tasks.GlueDataError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
