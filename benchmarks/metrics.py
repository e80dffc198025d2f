"""GLUE's official metrics (scikit-learn, scipy) and the two aggregates.

Scores are reported x100, as on the GLUE leaderboard.

- `glue_score`: the official GLUE score, the mean over the nine tasks, where a
  task with two metrics counts the mean of the two, MNLI counts the mean of
  matched and mismatched accuracy, and WNLI is included. AX is not part of it.
- `paper_average`: the "Avg" column of the BERT paper (Devlin et al., 2019,
  Table 1) and the papers that copy it: WNLI left out, F1 for MRPC and QQP,
  Spearman for STS-B, and MNLI-m and MNLI-mm as two separate entries.
"""

import numpy as np
import scipy.stats
import sklearn.metrics

from benchmarks.tasks import get_task
from reference_impl.text_to_text import NO_LABEL

METRICS = {
    "accuracy": lambda labels, predictions: sklearn.metrics.accuracy_score(labels, predictions),
    "f1": lambda labels, predictions: sklearn.metrics.f1_score(labels, predictions),
    "mcc": lambda labels, predictions: sklearn.metrics.matthews_corrcoef(labels, predictions),
    "pearson": lambda labels, predictions: scipy.stats.pearsonr(predictions, labels)[0],
    "spearman": lambda labels, predictions: scipy.stats.spearmanr(predictions, labels)[0],
}

GLUE_SCORE_TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI")
PAPER_AVERAGE_ENTRIES = (
    ("MNLI-m", "accuracy"),
    ("MNLI-mm", "accuracy"),
    ("QQP", "f1"),
    ("QNLI", "accuracy"),
    ("SST-2", "accuracy"),
    ("CoLA", "mcc"),
    ("STS-B", "spearman"),
    ("MRPC", "f1"),
    ("RTE", "accuracy"),
)


def compute_metrics(task_name, labels, predictions):
    """The official metrics of a task, x100. Predictions are class ids or scores.

    A constant prediction makes Pearson/Spearman undefined (scipy gives NaN
    with a warning); it is reported as 0: such a model carries no correlation.
    A text-to-text answer that is no label word (`NO_LABEL`) is scored as the
    next class after the label, a wrong one: the other class of a binary task,
    as T5's `f1_score_with_invalid` does, so F1 and Matthews count it wrong too.
    """
    task = get_task(task_name)
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) != len(predictions) or len(labels) == 0:
        raise ValueError(f"{task_name}: {len(labels)} labels but {len(predictions)} predictions.")
    if not task.is_regression:
        predictions = np.where(predictions == NO_LABEL, (labels + 1) % task.num_classes, predictions)
    scores = {}
    for name in task.metric_names:
        if name in ("pearson", "spearman") and np.ptp(predictions) == 0:
            scores[name] = 0.0
            continue
        scores[name] = 100.0 * float(METRICS[name](labels, predictions))
    return scores


def task_score(task_name, metrics):
    """One number per task: the mean of its metrics."""
    names = get_task(task_name).metric_names
    return float(np.mean([metrics[name] for name in names]))


def glue_score(task_metrics):
    """Official GLUE score from {task: {metric: value}}; None if a task is missing."""
    scores = []
    for name in GLUE_SCORE_TASKS:
        if name == "MNLI":
            parts = [task_metrics.get("MNLI-m"), task_metrics.get("MNLI-mm")]
            if None in parts:
                return None
            scores.append(np.mean([task_score("MNLI-m", parts[0]), task_score("MNLI-mm", parts[1])]))
        elif name not in task_metrics:
            return None
        else:
            scores.append(task_score(name, task_metrics[name]))
    return float(np.mean(scores))


def paper_average(task_metrics):
    """The papers' "Avg" (BERT Table 1 convention); None if an entry is missing."""
    values = []
    for task_name, metric in PAPER_AVERAGE_ENTRIES:
        if task_name not in task_metrics:
            return None
        values.append(task_metrics[task_name][metric])
    return float(np.mean(values))
