"""Reports from the results database: leaderboard, HTML page, Gradescope, GLUE zip.

- `scores_frame`: one row per (submission, task, seed, metric) — the tidy
  pandas table every other report is computed from.
- `leaderboard`: one row per submission, per-task score as GLUE prints it
  ("F1/accuracy", mean over seeds, "± std" when there are several seeds), the
  official GLUE score and the papers' "Avg", both labelled; broken
  submissions and data errors get their own row with the error.
- `write_markdown`, `write_html` (Jinja2 template, matplotlib plots embedded
  as base64 PNG so the page is one self-contained file), `write_gradescope`
  (results.json with the `leaderboard` field), `write_glue_zip` (the GLUE
  server's eleven `index<TAB>prediction` files with GLUE's label strings).
"""

import base64
import io
import json
import os
import zipfile

import jinja2
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import metrics, tasks  # noqa: E402

TASK_ORDER = tasks.GLUE_TASKS + ("AX",)
SUBMISSION_FILES = tuple(tasks.TASKS[name].submission_file for name in TASK_ORDER)


def selected_runs(database):
    """Per submission and task: the runs on the latest data, of the config (learning rate of a grid)
    with the best mean dev score."""
    latest_data = {}
    for run in database.runs():  # in the order stored: the last one's data is the current data
        latest_data[run.submission_hash, run.task] = run.data_hash
    groups = {}
    for run in database.runs():
        if run.data_hash == latest_data[run.submission_hash, run.task]:
            groups.setdefault((run.submission_hash, run.task, run.config_hash), []).append(run)
    best = {}
    for (digest, task, _), runs in groups.items():
        score = np.mean([metrics.task_score(task, run.metrics) if run.metrics else -np.inf for run in runs])
        if (digest, task) not in best or score > best[digest, task][0]:
            best[digest, task] = (score, runs)
    return [run for _, runs in best.values() for run in runs]


FRAME_COLUMNS = ["submission", "submission_hash", "model_family", "pretraining_flops", "task", "seed", "metric",
                 "value", "run_id"]


def scores_frame(database, runs=None):
    """One row per metric of each selected run (runs without dev scores have none)."""
    rows = []
    for run in selected_runs(database) if runs is None else runs:
        for metric, value in run.metrics.items():
            rows.append(
                {
                    "submission": run.submission_name,
                    "submission_hash": run.submission_hash,
                    "model_family": run.metadata_json.get("model_family"),
                    "pretraining_flops": run.metadata_json.get("pretraining_flops"),
                    "task": run.task,
                    "seed": run.seed,
                    "metric": metric,
                    "value": value,
                    "run_id": run.id,
                }
            )
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def mean_metrics(frame):
    """{submission_hash: {task: {metric: mean over seeds}}}."""
    means = frame.groupby(["submission_hash", "task", "metric"])["value"].mean()
    nested = {}
    for (digest, task, metric), value in means.items():
        nested.setdefault(digest, {}).setdefault(task, {})[metric] = float(value)
    return nested


def task_scores(frame):
    """Per (submission, task, seed) task score, then mean and std over seeds."""
    per_seed = frame.groupby(["submission_hash", "task", "seed"])["value"].mean().rename("score").reset_index()
    return per_seed.groupby(["submission_hash", "task"])["score"].agg(["mean", "std", "count"]).reset_index()


def format_cell(task, metric_means, score_std):
    names = tasks.get_task(task).metric_names
    text = "/".join(f"{metric_means[name]:.1f}" for name in names)
    if score_std is not None and not np.isnan(score_std):
        text += f" ± {score_std:.1f}"
    return text


AGGREGATE_COLUMNS = ["GLUE score (official)", "Avg (BERT paper)", "Mean of tasks run"]


def leaderboard(database):
    """The leaderboard table (pandas), best GLUE score first, failures last.

    Any mix of rows works: submissions with scored runs, runs without dev
    scores (their cells stay empty), and failures (broken submissions, tasks
    whose data could not be read), each with its error.
    """
    runs = selected_runs(database)
    frame = scores_frame(database, runs)
    nested = mean_metrics(frame)
    stats = task_scores(frame)
    present = [t for t in TASK_ORDER if t in set(frame["task"])]
    by_submission = {}
    for run in runs:
        by_submission.setdefault(run.submission_hash, []).append(run)
    rows = []
    for digest, submission_runs in by_submission.items():
        first, scored = submission_runs[0], nested.get(digest, {})
        row = {
            "Submission": first.submission_name,
            "Family": first.metadata_json.get("model_family"),
            "Pretraining FLOPs": first.metadata_json.get("pretraining_flops"),
            "Seeds": len({run.seed for run in submission_runs}),
        }
        for task in present:
            if task in scored:
                stat = stats[(stats.submission_hash == digest) & (stats.task == task)].iloc[0]
                row[task] = format_cell(task, scored[task], stat["std"])
            else:
                row[task] = ""
        row["GLUE score (official)"] = metrics.glue_score(scored)
        row["Avg (BERT paper)"] = metrics.paper_average(scored)
        row["Mean of tasks run"] = float(np.mean([metrics.task_score(t, m) for t, m in scored.items() if t != "AX"] or [np.nan]))
        row["Error"] = ""
        rows.append(row)
    for failure in database.failures():
        rows.append({"Submission": failure.submission_name, "Error": f"[{failure.task}] {failure.error}"})
    columns = ["Submission", "Family", "Pretraining FLOPs", "Seeds", *present, *AGGREGATE_COLUMNS, "Error"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["Error", "GLUE score (official)", "Mean of tasks run"], ascending=[True, False, False],
                             na_position="last").reset_index(drop=True)


def display_value(value):
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def to_markdown(table):
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = [
        "| " + " | ".join(display_value(v).replace("|", "\\|").replace("\n", " ") for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join([header, rule] + body) + "\n"


NOTES = (
    "GLUE score (official): mean over CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI; a two-metric task counts "
    "the mean of its two metrics and MNLI the mean of matched and mismatched (empty when a task was not run). "
    "Avg (BERT paper): mean of MNLI-m, MNLI-mm, QQP F1, QNLI, SST-2, CoLA, STS-B Spearman, MRPC F1, RTE (WNLI left out). "
    "Scores are on the dev sets, x100, mean over seeds ± standard deviation."
)


def write_markdown(database, path):
    table = leaderboard(database)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# GLUE leaderboard\n\n" + to_markdown(table) + "\n" + NOTES + "\n")
    return path


def figure_png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_task_scores(frame):
    stats = task_scores(frame)
    names = dict(zip(frame["submission_hash"], frame["submission"]))
    task_list = [t for t in TASK_ORDER if t in set(stats["task"])]
    figure, axis = plt.subplots(figsize=(max(6, 1.2 * len(task_list)), 4))
    width = 0.8 / max(1, stats["submission_hash"].nunique())
    for offset, (digest, group) in enumerate(stats.groupby("submission_hash", sort=False)):
        group = group.set_index("task").reindex(task_list)
        positions = np.arange(len(task_list)) + offset * width
        axis.bar(positions, group["mean"], width, yerr=group["std"].fillna(0), capsize=3, label=names[digest])
    axis.set_xticks(np.arange(len(task_list)) + 0.4 - width / 2, task_list)
    axis.set_ylabel("dev score (x100)")
    axis.set_title("Per-task scores (error bars: std over seeds)")
    axis.legend(fontsize="small")
    return figure_png(figure)


def plot_score_against_compute(frame):
    per_seed = frame.groupby(["submission_hash", "seed", "task"])["value"].mean().groupby(["submission_hash", "seed"]).mean()
    figure, axis = plt.subplots(figsize=(6, 4))
    known = []
    for digest, values in per_seed.groupby(level=0):
        row = frame[frame.submission_hash == digest].iloc[0]
        if row["pretraining_flops"] is None or pd.isna(row["pretraining_flops"]):
            continue  # compute not known: no place on this axis
        flops = float(row["pretraining_flops"])
        known.append(flops)
        axis.errorbar([flops], [values.mean()], yerr=[values.std() if len(values) > 1 else 0], fmt="o", capsize=4, label=row["submission"])
    # Log scale for pretrained models, with 0 (not pretrained) still on the axis.
    positive = [flops for flops in known if flops > 0]
    axis.set_xscale("symlog", linthresh=min(positive) / 10 if positive else 1.0)
    axis.margins(x=0.15)
    axis.set_xlabel("pretraining compute (FLOPs; 0 = not pretrained)")
    axis.set_ylabel("mean task score (x100)")
    axis.set_title("Score against pretraining compute (error bars: std over seeds)")
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize="small")
    else:
        axis.text(0.5, 0.5, "no submission states its pretraining compute", ha="center", transform=axis.transAxes)
    return figure_png(figure)


def write_html(database, path):
    frame = scores_frame(database)
    table = leaderboard(database)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    plots = []
    if not frame.empty:
        plots = [("Per-task scores", plot_task_scores(frame)), ("Score against pretraining compute", plot_score_against_compute(frame))]
    page = environment.get_template("report.html.j2").render(
        table=table.map(display_value).to_html(index=False, border=0, classes="leaderboard", escape=True) if not table.empty else "",
        notes=NOTES,
        plots=plots,
    )
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path


def write_gradescope(database, folder):
    """One results.json per submission (Gradescope's format, with `leaderboard`)."""
    frame = scores_frame(database)
    nested = mean_metrics(frame)
    paths = []
    for digest, task_metrics in nested.items():
        name = frame[frame.submission_hash == digest].iloc[0]["submission"]
        glue = metrics.glue_score(task_metrics)
        ordered = [t for t in TASK_ORDER if t in task_metrics]
        mean_score = float(np.mean([metrics.task_score(t, task_metrics[t]) for t in ordered if t != "AX"] or [0.0]))
        leaderboard_entries = [{"name": "GLUE score", "value": round(glue, 2) if glue is not None else "-"}]
        leaderboard_entries += [{"name": t, "value": round(metrics.task_score(t, task_metrics[t]), 2)} for t in ordered]
        result = {
            "score": round(glue if glue is not None else mean_score, 2),
            "output": f"{name}: " + ("GLUE score %.1f" % glue if glue is not None else "mean dev score %.1f over %s" % (mean_score, ", ".join(ordered))),
            "leaderboard": leaderboard_entries,
            "tests": [
                {"name": t, "score": round(metrics.task_score(t, task_metrics[t]), 2), "output": json.dumps({k: round(v, 2) for k, v in task_metrics[t].items()})}
                for t in ordered
            ],
        }
        target = os.path.join(folder, name)
        os.makedirs(target, exist_ok=True)
        paths.append(os.path.join(target, "results.json"))
        with open(paths[-1], "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return paths


def best_seed_runs(database, digest):
    """For each task, the run (seed) with the best dev task score."""
    best = {}
    for run in selected_runs(database):
        if run.submission_hash != digest:
            continue
        score = metrics.task_score(run.task, run.metrics) if run.metrics else -np.inf
        if run.task not in best or score > best[run.task][0]:
            best[run.task] = (score, run)
    return {task: run for task, (_, run) in best.items()}


def prediction_label(task, value):
    task = tasks.get_task(task)
    if task.is_regression:
        return f"{value:.3f}"
    return task.label_names[int(value)]


def write_glue_zip(database, digest, path):
    """The GLUE server zip for one submission; returns the task files it lacks."""
    runs = best_seed_runs(database, digest)
    missing = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for task_name, file_name in zip(TASK_ORDER, SUBMISSION_FILES):
            predictions = database.predictions(runs[task_name].id, "test") if task_name in runs else []
            if not predictions:
                missing.append(file_name)
                continue
            lines = ["index\tprediction"] + [f"{p.example_index}\t{prediction_label(task_name, p.prediction)}" for p in predictions]
            archive.writestr(file_name, "\n".join(lines) + "\n")
    return missing


def write_all(database, folder):
    """Every report into `folder`; returns {report: path} and notes on gaps."""
    os.makedirs(folder, exist_ok=True)
    written = {
        "markdown": write_markdown(database, os.path.join(folder, "leaderboard.md")),
        "html": write_html(database, os.path.join(folder, "leaderboard.html")),
        "gradescope": write_gradescope(database, os.path.join(folder, "gradescope")),
        "glue_zips": {},
    }
    notes = []
    for digest, name in {run.submission_hash: run.submission_name for run in database.runs()}.items():
        zip_path = os.path.join(folder, f"glue-submission-{name}.zip")
        missing = write_glue_zip(database, digest, zip_path)
        written["glue_zips"][name] = zip_path
        if missing:
            notes.append(f"{name}: GLUE zip incomplete (the server needs all eleven files); missing {', '.join(missing)}")
    return written, notes
