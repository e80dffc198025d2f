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
import hashlib
import io
import json
import os
import zipfile

import jinja2
import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmarks import baselines, metrics, tasks  # noqa: E402
from lms.gradescope import results_json  # noqa: E402
from reference_impl.text_to_text import NO_LABEL  # noqa: E402

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


def family_name(metadata):
    """The registry's lower-case family name, also for the older format's free text ("BERT")."""
    family = metadata.get("family") or metadata.get("model_family")
    return family.lower() if isinstance(family, str) else family


FRAME_COLUMNS = ["submission", "submission_hash", "model_family", "pretraining_flops", "parameters", "task", "seed",
                 "metric", "value", "run_id"]


def run_metrics(run, split="public"):
    """A run's dev scores on one split: "public" (runs stored before the split existed: the whole dev set),
    "private" (empty for those), or "dev" (the whole dev set)."""
    if split == "dev":
        return run.metrics
    if split == "private":
        return run.private_metrics or {}
    return run.metrics if run.public_metrics is None else run.public_metrics


def scores_frame(database, runs=None, split="public"):
    """One row per metric of each selected run on `split` (runs without dev scores have none)."""
    rows = []
    for run in selected_runs(database) if runs is None else runs:
        for metric, value in run_metrics(run, split).items():
            rows.append(
                {
                    "submission": run.submission_name,
                    "submission_hash": run.submission_hash,
                    "model_family": family_name(run.metadata_json),
                    "pretraining_flops": run.metadata_json.get("pretraining_flops"),
                    "parameters": run.metadata_json.get("parameters"),
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


def overall_score(task_metrics):
    """The official GLUE score when all nine tasks are there, else the mean over the tasks run (AX left out)."""
    glue = metrics.glue_score(task_metrics)
    if glue is not None:
        return glue
    values = [metrics.task_score(t, m) for t, m in task_metrics.items() if t != "AX" and m]
    return float(np.mean(values)) if values else np.nan


PF_DAY = 1e15 * 86400  # FLOPs in a petaFLOP/s-day


def readable_compute(flops):
    """Pretraining compute as people write it: "none", "3.1e11 FLOPs", "0.33 PF-days"."""
    if flops is None or (isinstance(flops, float) and np.isnan(flops)):
        return "unknown"
    if flops == 0:
        return "none"
    if flops >= 0.01 * PF_DAY:
        return f"{flops / PF_DAY:.2g} PF-days"
    return f"{flops:.1e} FLOPs"


def readable_count(count):
    if count is None or (isinstance(count, float) and np.isnan(count)):
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(int(count))


ADJECTIVES = ("amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "hardy", "jolly", "keen", "lucid",
              "mellow", "nimble", "plucky", "quiet", "rapid", "sunny", "tidy", "vivid", "witty")
ANIMALS = ("badger", "crane", "dingo", "egret", "ferret", "gecko", "heron", "ibis", "jackal", "koala", "lemur",
           "marten", "newt", "otter", "puffin", "quokka", "raven", "stoat", "tapir", "wombat")


def pseudonym(student):
    """A stable public name for a student ("witty-otter-3f"): the same in every report, not their name."""
    digest = hashlib.sha256(f"benchmarks.pseudonym:{student}".encode()).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]}-{ANIMALS[digest[1] % len(ANIMALS)]}-{digest[2]:02x}"


AGGREGATE_COLUMNS = ["GLUE score (official)", "Avg (BERT paper)", "Mean of tasks run"]
PRIVATE_COLUMN = "Private score (final)"


def reference_rows(present):
    """The published reference rows (never re-run), on the tasks of this board."""
    rows = []
    for name, reference in baselines.PUBLISHED_REFERENCES.items():
        shown = {t: v for t, v in reference["scores"].items() if t in present}
        if not shown:
            continue
        row = {"Rank": "ref", "Submission": name, "Family": reference["family"],
               "Parameters": readable_count(reference["parameters"]),
               "Pretraining compute": readable_compute(reference["pretraining_flops"]), "Seeds": "",
               **{t: f"{v:.1f}" for t, v in shown.items()},
               "GLUE score (official)": reference["glue_score"] if len(shown) == len(reference["scores"]) else None,
               "Avg (BERT paper)": None, "Mean of tasks run": float(np.mean(list(shown.values()))), "Error": ""}
        rows.append(row)
    return rows


def leaderboard(database, reveal=None, references=False):
    """The leaderboard table (pandas), ranked, failures last.

    Per-task cells and aggregates are public-split scores. With `reveal`
    (default: whether staff ran `benchmarks reveal`), a "Private score (final)"
    column shows each submission's score on the private split, and the rank
    follows it; otherwise the rank follows the official GLUE score where
    complete, the mean over the tasks run otherwise. `references`: add the
    published reference rows (labelled, unranked). Any mix of rows works:
    scored runs, runs without dev scores (empty cells), failures with their error.
    """
    reveal = database.private_revealed() if reveal is None else reveal
    runs = selected_runs(database)
    frame = scores_frame(database, runs)
    private = mean_metrics(scores_frame(database, runs, split="private")) if reveal else {}
    nested = mean_metrics(frame)
    stats = task_scores(frame)
    present = [t for t in TASK_ORDER if t in set(frame["task"])]
    by_submission = {}
    for run in runs:
        by_submission.setdefault(run.submission_hash, []).append(run)
    rows = []
    for digest, submission_runs in by_submission.items():
        first, scored = submission_runs[0], nested.get(digest, {})
        student = first.metadata_json.get("student")
        row = {
            "Submission": first.submission_name,
            "Student": pseudonym(student) if student else "",
            "Family": family_name(first.metadata_json),
            "Parameters": readable_count(first.metadata_json.get("parameters")),
            "Pretraining compute": readable_compute(first.metadata_json.get("pretraining_flops")),
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
        row["_rank_by"] = overall_score(private.get(digest, {})) if reveal else overall_score(scored)
        if reveal:
            row[PRIVATE_COLUMN] = row["_rank_by"]
        row["Error"] = ""
        rows.append(row)
    # Best first; submissions without a score (no dev labels) last, unranked.
    rows.sort(key=lambda row: -row["_rank_by"] if not np.isnan(row["_rank_by"]) else np.inf)
    for rank, row in enumerate(rows, 1):
        row["Rank"] = str(rank) if not np.isnan(row.pop("_rank_by")) else ""
    if references:
        rows += reference_rows(present)
    for failure in database.failures():
        rows.append({"Submission": failure.submission_name, "Error": f"[{failure.task}] {failure.error}"})
    columns = ["Rank", "Submission", "Student", "Family", "Parameters", "Pretraining compute", "Seeds", *present,
               *AGGREGATE_COLUMNS, *([PRIVATE_COLUMN] if reveal else []), "Error"]
    return pd.DataFrame(rows, columns=columns)


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
    "Scores are on the dev sets, x100, mean over seeds ± standard deviation. Rank: by the official GLUE score where "
    "all nine tasks were run, else by the mean over the tasks run. Rows 'ref' are published figures, not re-run."
)
SPLIT_NOTES = {
    False: "Scores shown are on the public half of each dev set. The private half (benchmarks/splits.py) is scored "
           "for every run but hidden until staff reveal it; it decides the final ranking.",
    True: "Private scores revealed: 'Private score (final)' is each submission's score on the private half of each "
          "dev set, and the rank follows it. The task columns stay public-half scores.",
}


def write_markdown(database, path, reveal=None):
    table = leaderboard(database, reveal=reveal, references=True)
    revealed = database.private_revealed() if reveal is None else reveal
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("# GLUE leaderboard\n\n" + to_markdown(table) + "\n" + NOTES + "\n\n" + SPLIT_NOTES[revealed] + "\n")
    return path


def figure_png(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def family_colours(frame):
    """One colour per model family, the same in every plot of a page."""
    families = sorted({str(f) for f in frame["model_family"]})
    palette = plt.get_cmap("tab10").colors
    return {family: palette[i % len(palette)] for i, family in enumerate(families)}


def plot_task_scores(frame):
    stats = task_scores(frame)
    names = dict(zip(frame["submission_hash"], frame["submission"]))
    task_list = [t for t in TASK_ORDER if t in set(stats["task"])]
    submissions_count = max(1, stats["submission_hash"].nunique())
    figure, axis = plt.subplots(figsize=(min(14, max(7, 1.1 * len(task_list))), 4.5))
    width = 0.8 / submissions_count
    for offset, (digest, group) in enumerate(stats.groupby("submission_hash", sort=False)):
        group = group.set_index("task").reindex(task_list)
        positions = np.arange(len(task_list)) + offset * width
        axis.bar(positions, group["mean"], width, yerr=group["std"].fillna(0), capsize=3, label=names[digest])
    axis.set_xticks(np.arange(len(task_list)) + 0.4 - width / 2, task_list)
    axis.set_ylabel("public dev score (x100)")
    axis.set_title("Per-task scores (error bars: std over seeds)")
    axis.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return figure_png(figure)


def submission_points(frame):
    """Per submission: name, family, parameters, compute, mean task score and its std over seeds."""
    per_seed = frame.groupby(["submission_hash", "seed", "task"])["value"].mean().groupby(["submission_hash", "seed"]).mean()
    points = []
    for digest, values in per_seed.groupby(level=0):
        row = frame[frame.submission_hash == digest].iloc[0]
        points.append({"name": row["submission"], "family": str(row["model_family"]),
                       "parameters": row["parameters"], "flops": row["pretraining_flops"],
                       "score": values.mean(), "std": values.std() if len(values) > 1 else 0.0})
    return points


def plot_score_against(frame, key, label, title):
    """Mean score against `key` ("parameters" or "flops") on a log axis, one colour per family."""
    colours = family_colours(frame)
    figure, axis = plt.subplots(figsize=(6.5, 4.5))
    known = [p for p in submission_points(frame) if p[key] is not None and not pd.isna(p[key])]
    for point in known:
        axis.errorbar([float(point[key])], [point["score"]], yerr=[point["std"]], fmt="o", capsize=4,
                      color=colours[point["family"]], markersize=8)
        axis.annotate(point["name"], (float(point[key]), point["score"]), textcoords="offset points",
                      xytext=(6, 4), fontsize="small")
    positive = [float(p[key]) for p in known if float(p[key]) > 0]
    # Log scale, with 0 (not pretrained) still on the axis.
    axis.set_xscale("symlog", linthresh=min(positive) / 10 if positive else 1.0)
    axis.margins(x=0.2, y=0.15)
    axis.set_xlabel(label)
    axis.set_ylabel("mean public task score (x100)")
    axis.set_title(title)
    handles = [matplotlib.lines.Line2D([], [], marker="o", linestyle="", color=colour, label=family)
               for family, colour in colours.items() if any(p["family"] == family for p in known)]
    if handles:
        axis.legend(handles=handles, title="family", fontsize="small")
    else:
        axis.text(0.5, 0.5, "no submission states it", ha="center", transform=axis.transAxes)
    return figure_png(figure)


def plot_above_chance(frame):
    """Each submission's task score minus the majority-class baseline's on that task."""
    stats = task_scores(frame)
    names = dict(zip(frame["submission_hash"], frame["submission"]))
    majority = stats[stats.submission_hash == baselines.baseline_hash(baselines.MAJORITY)].set_index("task")["mean"]
    stats = stats[stats.submission_hash != baselines.baseline_hash(baselines.MAJORITY)]
    task_list = [t for t in TASK_ORDER if t in set(stats["task"]) and t in majority.index]
    figure, axis = plt.subplots(figsize=(max(7, 1.6 * len(task_list)), 4.5))
    width = 0.8 / max(1, stats["submission_hash"].nunique())
    for offset, (digest, group) in enumerate(stats.groupby("submission_hash", sort=False)):
        group = group.set_index("task").reindex(task_list)
        axis.bar(np.arange(len(task_list)) + offset * width, group["mean"] - majority.reindex(task_list), width,
                 yerr=group["std"].fillna(0), capsize=3, label=names[digest])
    axis.axhline(0, color="black", linewidth=1)
    axis.set_xticks(np.arange(len(task_list)) + 0.4 - width / 2, task_list)
    axis.set_ylabel("score minus majority class (points)")
    axis.set_title("How far above chance (0 = the majority-class baseline)")
    axis.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    return figure_png(figure)


def plots(frame):
    """(title, base64 PNG) of every plot of the page."""
    if frame.empty:
        return []
    shown = [("Per-task scores", plot_task_scores(frame)),
             ("Score against parameters", plot_score_against(frame, "parameters", "parameters",
                                                            "Score against model size")),
             ("Score against pretraining compute", plot_score_against(
                 frame, "flops", "pretraining compute (FLOPs; 0 = not pretrained)", "Score against pretraining compute"))]
    if baselines.baseline_hash(baselines.MAJORITY) in set(frame["submission_hash"]):
        shown.append(("How far above chance", plot_above_chance(frame)))
    return shown


def write_html(database, path, reveal=None):
    frame = scores_frame(database)
    table = leaderboard(database, reveal=reveal, references=True)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    revealed = database.private_revealed() if reveal is None else reveal
    page = environment.get_template("report.html.j2").render(
        table=table.map(display_value).to_html(index=False, border=0, classes="leaderboard", escape=True) if not table.empty else "",
        notes=NOTES,
        split_note=SPLIT_NOTES[revealed],
        plots=plots(frame),
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
        task_scores = {t: round(metrics.task_score(t, task_metrics[t]), 2) for t in ordered}
        leaderboard_entries = [{"name": "GLUE score", "value": round(glue, 2) if glue is not None else "-", "order": "desc"}]
        leaderboard_entries += [{"name": t, "value": task_scores[t], "order": "desc"} for t in ordered]
        # Each task's test reports a score out of 100 (a benchmark, not a pass/fail check): it passed by running.
        task_tests = [
            {"name": t, "score": task_scores[t], "max_score": 100, "status": "passed", "output": json.dumps({k: round(v, 2) for k, v in task_metrics[t].items()})}
            for t in ordered
        ]
        result = results_json(
            task_tests,
            score=round(glue if glue is not None else mean_score, 2),
            output=f"{name}: " + ("GLUE score %.1f" % glue if glue is not None else "mean dev score %.1f over %s" % (mean_score, ", ".join(ordered))),
            leaderboard=leaderboard_entries,
        )
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
    """The GLUE server's spelling of a prediction. The server takes no blank: a text-to-text answer that
    was no label word (`NO_LABEL`) goes as the first label."""
    task = tasks.get_task(task)
    if task.is_regression:
        return f"{value:.3f}"
    return task.label_names[0 if value == NO_LABEL else int(value)]


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


def write_all(database, folder, reveal=None):
    """Every report into `folder`; returns {report: path} and notes on gaps.

    `reveal`: show the private scores (default: whether staff ran `benchmarks reveal`).
    """
    os.makedirs(folder, exist_ok=True)
    written = {
        "markdown": write_markdown(database, os.path.join(folder, "leaderboard.md"), reveal),
        "html": write_html(database, os.path.join(folder, "leaderboard.html"), reveal),
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
