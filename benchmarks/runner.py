"""Runs submissions x tasks x seeds, storing each finished run in the database.

Stages, one after another for each (submission, task, seed):
1. check the submission (metadata, vocabulary, safe load, interface); a broken
   one gets a failure row and the others go on;
2. read the task's splits and tokenize them (cached .npz arrays);
3. load a fresh copy of the encoder, fine-tune it with the recipe;
4. predict dev (and test, for the GLUE server) and score dev;
5. store the run and its predictions in one transaction.

MNLI is fine-tuned once, as "MNLI-m"; that model also predicts MNLI-mm and AX,
each stored as its own run. Runs already in the database are skipped.
"""

import datetime
import os
import time

import numpy as np
from tqdm.auto import tqdm

from benchmarks import encoding, finetune, metrics, results, submissions, tasks


class TaskArrays:
    """Reads, subsamples and tokenizes a task's splits for one tokenizer."""

    def __init__(self, glue_dir, cache_dir, config):
        self.glue_dir = glue_dir
        self.cache_dir = cache_dir
        self.config = config

    def load(self, pair_encoder, task_name, split):
        """Arrays for one split, or None if an evaluation split is absent."""
        task = tasks.get_task(task_name)
        if split != "train" and not tasks.has_split(self.glue_dir, task, split):
            return None
        examples = tasks.read_split(self.glue_dir, task, split)
        if split == "train" and self.config.max_train_examples:
            examples = sample(examples, self.config.max_train_examples)
        elif split != "train" and self.config.max_eval_examples:
            examples = examples.head(self.config.max_eval_examples)
        path = tasks.task_path(self.glue_dir, task, split)
        name = f"{task.folder}-{os.path.basename(path).removesuffix('.tsv')}"
        return encoding.cached_encode(pair_encoder, examples, path, self.cache_dir, name)


def sample(examples, count):
    """The same `count` examples for every submission and seed (fixed generator)."""
    if count >= len(examples):
        return examples
    rows = np.sort(np.random.default_rng(0).choice(len(examples), count, replace=False))
    labels = None if examples.labels is None else examples.labels[rows]
    return tasks.Examples([examples.texts[r] for r in rows], labels, examples.index[rows], examples.skipped_rows)


def planned_tasks(task_names):
    """Tasks to fine-tune, each with the requested tasks its model is scored on."""
    plan = {}
    for name in task_names:
        tasks.get_task(name)
        trained = tasks.TRAINED_BY.get(name, name)
        plan.setdefault(trained, [])
        if name not in plan[trained]:
            plan[trained].append(name)
    return plan


class BenchmarkRunner:
    def __init__(self, database, glue_dir, task_names, seeds, config, cache_dir, progress=True):
        self.database = database
        self.glue_dir = glue_dir
        self.plan = planned_tasks(task_names)
        self.seeds = list(seeds)
        self.config = config
        self.arrays = TaskArrays(glue_dir, cache_dir, config)
        self.progress = progress
        self.hardware = results.hardware_description()
        self.versions = results.library_versions()

    def run(self, submission_folders):
        total = len(submission_folders) * len(self.plan) * len(self.seeds)
        with tqdm(total=total, desc="runs", unit="run", disable=not self.progress) as bar:
            for folder in submission_folders:
                self.run_submission(folder, bar)

    def run_submission(self, folder, bar):
        digest = submissions.submission_hash(folder)
        name = os.path.basename(os.path.normpath(folder))
        try:
            metadata = submissions.read_metadata(folder)
            name = metadata["name"]
            pair_encoder = encoding.PairEncoder(
                submissions.vocabulary_path(folder), metadata["lowercase"], self.config.sequence_length
            )
            submissions.load_encoder(folder, self.config.sequence_length)
        except (submissions.SubmissionError, ValueError) as error:
            self.database.add_failure(digest, name, "*", str(error))
            bar.update(len(self.plan) * len(self.seeds))
            return
        self.database.clear_failures(digest)
        for trained_task, scored_tasks in self.plan.items():
            for seed in self.seeds:
                bar.set_description(f"{name} {trained_task} seed {seed}")
                pending = [t for t in scored_tasks if not self.database.has_run(digest, t, seed, self.config.to_dict())]
                if pending:
                    try:
                        self.run_one(folder, digest, metadata, pair_encoder, trained_task, pending, seed)
                    except tasks.GlueDataError as error:
                        self.database.add_failure(digest, name, trained_task, str(error))
                        bar.update(len(self.seeds))
                        break
                    except Exception as error:  # a submission failing in training: its row, not the whole run
                        self.database.add_failure(digest, name, trained_task, f"{type(error).__name__}: {error}")
                bar.update(1)

    def run_one(self, folder, digest, metadata, pair_encoder, trained_task, scored_tasks, seed):
        start = time.perf_counter()
        train = self.arrays.load(pair_encoder, trained_task, "train")
        evaluations = {
            task: {split: self.arrays.load(pair_encoder, task, split) for split in ("dev", "test")} for task in scored_tasks
        }
        task = tasks.get_task(trained_task)
        encoder = submissions.load_encoder(folder, self.config.sequence_length)  # fresh weights for every run
        if self.config.mixed_precision:
            encoder = submissions.with_dtype_policy(encoder, "mixed_bfloat16")
        steps = finetune.steps_per_epoch(train, self.config) * self.config.epochs
        with tqdm(total=steps, desc="  steps", unit="step", leave=False, disable=not self.progress) as step_bar:
            result = finetune.fine_tune(
                encoder, train, task.num_classes, self.config, seed, callbacks=[finetune.ProgressCallback(step_bar)]
            )
        runs = []
        for scored_task, splits in evaluations.items():
            predictions, scores = [], {}
            for split, arrays in splits.items():
                if arrays is None:
                    continue
                predicted = finetune.predict(result.model, arrays, task.num_classes)
                labels = arrays.get("labels")
                if labels is not None and split == "dev":
                    scores = metrics.compute_metrics(scored_task, labels, predicted)
                predictions += [
                    results.Prediction(
                        split=split,
                        position=position,
                        example_index=str(arrays["index"][position]),
                        prediction=float(predicted[position]),
                        label=None if labels is None else float(labels[position]),
                    )
                    for position in range(len(predicted))
                ]
            runs.append(
                results.Run(
                    submission_hash=digest,
                    submission_name=metadata["name"],
                    task=scored_task,
                    seed=seed,
                    config_hash=results.config_hash(self.config.to_dict()),
                    config=self.config.to_dict(),
                    metadata_json=metadata,
                    metrics=scores,
                    train_examples=len(train["labels"]),
                    wall_seconds=time.perf_counter() - start,
                    train_sequences_per_second=result.train_sequences_per_second,
                    train_tokens_per_second=result.train_tokens_per_second,
                    hardware=self.hardware,
                    versions=self.versions,
                    finished_at=datetime.datetime.now(datetime.UTC),
                    predictions=predictions,
                )
            )
        self.database.add_runs(runs)
