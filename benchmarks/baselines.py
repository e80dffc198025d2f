"""Baselines every leaderboard shows: what a score means next to chance and next to a linear model.

- `majority-class`: predicts the training set's most frequent class (STS-B:
  its mean score; a constant has no correlation, so its Pearson and Spearman
  are 0 by definition). The "chance" line of the above-chance view.
- `bag-of-words-logreg`: scikit-learn's `TfidfVectorizer` (words and word
  pairs) and `LogisticRegression` (STS-B: `Ridge`); for a text pair the two
  texts' vectors are concatenated with the vector of the words they share.
  No pretraining, no neural network: what any model should beat.

Both are trained on the same training examples as the submissions
(`max_train_examples`) and stored as runs (seed 0) with their predictions,
public and private scores, so every report treats them as rows.

`PUBLISHED_REFERENCES`: published dev figures, shown as labelled rows and
never re-run.
"""

import datetime
import hashlib
import warnings

import numpy as np
import scipy.sparse
import sklearn.feature_extraction.text
import sklearn.linear_model

from benchmarks import metrics, results, runner, splits, tasks

MAJORITY = "majority-class"
BAG_OF_WORDS = "bag-of-words-logreg"
FAMILY = "baseline"

# BERT-base on the GLUE dev sets as reported by Sanh et al. (2019), "DistilBERT, a distilled version of BERT",
# arXiv:1910.01108 (v4), Table 1 ("Comparison on the dev sets of the GLUE benchmark. [...] BERT and DistilBERT
# results are the medians of 5 runs with different seeds"), row "BERT-base": Score 79.5, CoLA 56.3, MNLI 86.7,
# MRPC 88.6, QNLI 91.8, QQP 89.6, RTE 69.3, SST-2 92.7, STS-B 89.0, WNLI 53.5. Checked figure by figure against
# the paper's text on 2026-12-02. One figure per task, the paper's metric, x100; the paper does not say which
# MNLI set, shown as MNLI-m. Its "Score" is its own macro-score (the nine printed figures average 79.7), shown as
# the row's GLUE score. Parameters: 110M (Devlin et al. 2019; Sanh et al. Table 3). Pretraining compute: the
# 6 x parameters x tokens estimate over Devlin et al.'s schedule (1M steps of 256 sequences, 90% of the steps at
# 128 tokens, 10% at 512).
PUBLISHED_REFERENCES = {
    "BERT-base (published dev, Sanh et al. 2019 Table 1; not re-run)": {
        "family": "reference",
        "parameters": 110_000_000,
        "pretraining_flops": 6 * 110e6 * 1e6 * 256 * (0.9 * 128 + 0.1 * 512),
        "glue_score": 79.5,
        "scores": {"CoLA": 56.3, "MNLI-m": 86.7, "MRPC": 88.6, "QNLI": 91.8, "QQP": 89.6, "RTE": 69.3,
                   "SST-2": 92.7, "STS-B": 89.0, "WNLI": 53.5},
    },
}


def pair_features(vectorizer, examples):
    """Tf-idf of each text; for pairs, [first | second | words both share]."""
    first = vectorizer.transform([texts[0] for texts in examples.texts])
    if len(examples.texts[0]) == 1:
        return first
    second = vectorizer.transform([texts[1] for texts in examples.texts])
    return scipy.sparse.hstack([first, second, first.multiply(second)]).tocsr()


def predictions(baseline, task, train, evaluated):
    """Predictions of `baseline` trained on `train` for each `Examples` in `evaluated`."""
    if baseline == MAJORITY:
        constant = train.labels.mean() if task.is_regression else np.bincount(train.labels.astype(int)).argmax()
        return [np.full(len(examples), constant, "float64") for examples in evaluated]
    vectorizer = sklearn.feature_extraction.text.TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    vectorizer.fit([text for texts in train.texts for text in texts])
    model = (sklearn.linear_model.Ridge(alpha=1.0) if task.is_regression
             else sklearn.linear_model.LogisticRegression(max_iter=1000, C=1.0))
    model.fit(pair_features(vectorizer, train), train.labels)
    return [model.predict(pair_features(vectorizer, examples)).astype("float64") for examples in evaluated]


def scores(task_name, labels, predicted):
    """The task's metrics; a constant prediction's undefined correlation counts as 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy/sklearn warn on constant predictions
        values = metrics.compute_metrics(task_name, labels, predicted)
    return {name: 0.0 if np.isnan(value) else value for name, value in values.items()}


def baseline_hash(baseline):
    return hashlib.sha256(f"benchmarks.baselines:{baseline}".encode()).hexdigest()


def run_baselines(database, glue_dir, task_names, config, baselines=(MAJORITY, BAG_OF_WORDS)):
    """Fit each baseline on each task's training examples and store a run per task (skipping stored ones)."""
    arrays = runner.TaskArrays(glue_dir, None, config)
    versions = results.library_versions()
    for baseline in baselines:
        digest = baseline_hash(baseline)
        metadata = {"name": baseline, "model_family": FAMILY, "pretraining_flops": 0, "parameters": None}
        for name in task_names:
            task = tasks.get_task(name)
            trained = tasks.TRAINED_BY.get(name, name)
            if "dev" not in task.splits:
                continue
            run_key = arrays.run_key(trained, name)
            if database.has_run(digest, name, 0, config.to_dict(), run_key):
                continue
            try:
                train = runner.sample(tasks.read_split(glue_dir, trained, "train"), config.max_train_examples or 10**9)
                dev = tasks.read_split(glue_dir, task, "dev")
            except tasks.GlueDataError as error:
                database.add_failure(digest, baseline, name, str(error))
                continue
            if config.max_eval_examples:
                dev = dev.head(config.max_eval_examples)
            (predicted,) = predictions(baseline, tasks.get_task(trained), train, [dev])
            private = splits.private_mask(dev.texts)
            halves = {half: scores(name, dev.labels[mask], predicted[mask])
                      for half, mask in (("public", ~private), ("private", private)) if mask.sum() >= 2}
            database.add_runs([results.Run(
                submission_hash=digest, submission_name=baseline, task=name, seed=0,
                config_hash=results.config_hash(config.to_dict()), config=config.to_dict(), data_hash=run_key,
                metadata_json=metadata, metrics=scores(name, dev.labels, predicted),
                public_metrics=halves.get("public"), private_metrics=halves.get("private"),
                train_examples=len(train), wall_seconds=0.0, train_sequences_per_second=0.0,
                train_tokens_per_second=0.0, hardware=results.hardware_description(), versions=versions,
                finished_at=datetime.datetime.now(datetime.UTC),
                predictions=[results.Prediction(split="dev", position=i, example_index=str(index),
                                                prediction=float(value), label=float(label))
                             for i, (index, value, label) in enumerate(zip(dev.index, predicted, dev.labels))],
            )])
