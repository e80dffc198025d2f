"""Official GLUE metrics and aggregates."""

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from benchmarks import metrics
from reference_impl.text_to_text import NO_LABEL

# BERT-base on the GLUE test server (Devlin et al., 2019, and the GLUE leaderboard):
# GLUE score 78.3; the paper's Table 1 "Average" 79.6.
BERT_BASE_TEST = {
    "CoLA": {"mcc": 52.1},
    "SST-2": {"accuracy": 93.5},
    "MRPC": {"f1": 88.9, "accuracy": 84.8},
    "STS-B": {"pearson": 87.1, "spearman": 85.8},
    "QQP": {"f1": 71.2, "accuracy": 89.2},
    "MNLI-m": {"accuracy": 84.6},
    "MNLI-mm": {"accuracy": 83.4},
    "QNLI": {"accuracy": 90.5},
    "RTE": {"accuracy": 66.4},
    "WNLI": {"accuracy": 65.1},
}


def test_glue_score_reproduces_bert_base_test_row():
    assert round(metrics.glue_score(BERT_BASE_TEST), 1) == 78.3


def test_paper_average_reproduces_bert_base_table_1():
    assert round(metrics.paper_average(BERT_BASE_TEST), 1) == 79.6


def test_aggregates_need_every_task():
    partial = {k: v for k, v in BERT_BASE_TEST.items() if k != "MNLI-mm"}
    assert metrics.glue_score(partial) is None and metrics.paper_average(partial) is None
    # WNLI counts in the GLUE score but not in the papers' Avg
    without_wnli = {k: v for k, v in BERT_BASE_TEST.items() if k != "WNLI"}
    assert metrics.glue_score(without_wnli) is None
    assert metrics.paper_average(without_wnli) == metrics.paper_average(BERT_BASE_TEST)


def test_metrics_equal_sklearn_and_scipy():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    mrpc = metrics.compute_metrics("MRPC", labels, predictions)
    assert mrpc["f1"] == pytest.approx(100 * sklearn.metrics.f1_score(labels, predictions))
    assert mrpc["accuracy"] == pytest.approx(100 * np.mean(labels == predictions))
    cola = metrics.compute_metrics("CoLA", labels, predictions)
    assert cola["mcc"] == pytest.approx(100 * sklearn.metrics.matthews_corrcoef(labels, predictions))
    three_labels, three_predictions = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    ax = metrics.compute_metrics("AX", three_labels, three_predictions)
    assert ax["mcc"] == pytest.approx(100 * sklearn.metrics.matthews_corrcoef(three_labels, three_predictions))
    scores, truth = rng.uniform(0, 5, 100), rng.uniform(0, 5, 100)
    stsb = metrics.compute_metrics("STS-B", truth, scores)
    assert stsb["pearson"] == pytest.approx(100 * scipy.stats.pearsonr(truth, scores)[0])
    assert stsb["spearman"] == pytest.approx(100 * scipy.stats.spearmanr(truth, scores)[0])


def test_perfect_and_constant_predictions():
    labels = np.array([0, 1, 2, 1, 0])
    assert metrics.compute_metrics("MNLI-m", labels, labels) == {"accuracy": 100.0}
    assert metrics.compute_metrics("AX", labels, labels) == {"mcc": 100.0}
    assert metrics.compute_metrics("STS-B", [1.0, 2.0, 3.0], [2.5, 2.5, 2.5]) == {"pearson": 0.0, "spearman": 0.0}
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        metrics.compute_metrics("SST-2", [0, 1, 1], [0, 1])


def test_a_text_to_text_answer_that_is_no_label_word_is_scored_wrong():
    labels = np.array([1, 0, 1, 0])
    answered = np.array([1, NO_LABEL, NO_LABEL, 0])  # T5 wrote something else on examples 1 and 2
    # Scored as the other class, as T5's f1_score_with_invalid does: a false positive, then a false negative.
    as_wrong = np.array([1, 1, 0, 0])
    assert metrics.compute_metrics("RTE", labels, answered) == {"accuracy": 50.0}
    assert metrics.compute_metrics("MRPC", labels, answered) == pytest.approx(
        {"f1": 100 * sklearn.metrics.f1_score(labels, as_wrong), "accuracy": 50.0})
    assert metrics.compute_metrics("CoLA", labels, answered) == pytest.approx(
        {"mcc": 100 * sklearn.metrics.matthews_corrcoef(labels, as_wrong)})
    three = np.array([0, 1, 2])
    assert metrics.compute_metrics("MNLI-m", three, [NO_LABEL] * 3) == {"accuracy": 0.0}
