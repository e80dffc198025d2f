"""Runs submissions x tasks x seeds, storing each finished run in the database.

Stages for each (submission, task, seed):
1. check the submission (metadata, vocabulary, safe load, interface); a broken
   one gets a failure row and the others go on (driver);
2. read the task's splits and tokenize them (cached .npz arrays) (driver);
3. load a fresh copy of the encoder, fine-tune it with the recipe, predict
   dev (and test, for the GLUE server) (the job: here, or a Ray task);
4. score dev and store the run and its predictions in one transaction (driver).

MNLI is fine-tuned once, as "MNLI-m"; that model also predicts MNLI-mm and AX,
each stored as its own run. Runs already in the database are skipped.
"""

import datetime
import os
import tempfile
import time

import keras
import numpy as np
from tqdm.auto import tqdm

from benchmarks import encoding, finetune, metrics, results, submissions, tasks
from cluster import executor as cluster_executor


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
    """Plans the runs, has an executor fine-tune them, and stores each result as it arrives.

    Only this process reads submission folders and data and writes the
    database. Each (submission, task, seed) job gets its data as values
    (the encoder file's bytes, token arrays), so it runs here, one after
    another (the default), or as a Ray task on a cluster.
    """

    def __init__(self, database, glue_dir, task_names, seeds, config, cache_dir, progress=True,
                 executor=None):
        self.database = database
        self.glue_dir = glue_dir
        self.plan = planned_tasks(task_names)
        self.seeds = list(seeds)
        self.config = config
        self.arrays = TaskArrays(glue_dir, cache_dir, config)
        self.progress = progress
        self.executor = executor or cluster_executor.LocalExecutor()
        self.versions = results.library_versions()

    def run(self, submission_folders):
        jobs, skipped = [], 0
        for folder in submission_folders:
            submission_jobs, submission_skipped = self.submission_jobs(folder)
            jobs += submission_jobs
            skipped += submission_skipped
        total = len(submission_folders) * len(self.plan) * len(self.seeds)
        with tqdm(total=total, initial=skipped, desc="runs", unit="run", disable=not self.progress) as bar:
            for (spec, _, arrays), outcome, lost in self.executor.completed(fine_tune_job, jobs):
                if lost:
                    self.database.add_failure(spec["digest"], spec["metadata"]["name"], spec["trained_task"], str(lost))
                else:
                    self.store(spec, outcome, self.executor.fetch(arrays))
                bar.set_description(f"{spec['metadata']['name']} {spec['trained_task']} seed {spec['seed']}")
                bar.update(1)

    def submission_jobs(self, folder):
        """Check a submission and read its tasks' data; (jobs still to run, runs skipped).

        A broken submission, or a task whose data cannot be read, gets a
        failure row and no jobs; the other submissions and tasks go on.
        """
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
            return [], len(self.plan) * len(self.seeds)
        self.database.clear_failures(digest)
        with open(os.path.join(folder, submissions.ENCODER_FILE), "rb") as handle:
            encoder_file = self.executor.share(handle.read())
        jobs, skipped = [], 0
        for trained_task, scored_tasks in self.plan.items():
            pending = {seed: [t for t in scored_tasks if not self.database.has_run(digest, t, seed, self.config.to_dict())]
                       for seed in self.seeds}
            pending = {seed: names for seed, names in pending.items() if names}
            skipped += len(self.seeds) - len(pending)
            if not pending:
                continue
            try:
                arrays = self.executor.share(self.task_arrays(pair_encoder, trained_task, scored_tasks))
            except tasks.GlueDataError as error:
                self.database.add_failure(digest, name, trained_task, str(error))
                skipped += len(pending)
                continue
            for seed, names in pending.items():
                spec = {"digest": digest, "metadata": metadata, "trained_task": trained_task, "scored_tasks": names,
                        "seed": seed, "config": self.config.to_dict(), "progress": self.progress and self.executor.in_process}
                jobs.append((spec, encoder_file, arrays))
        return jobs, skipped

    def task_arrays(self, pair_encoder, trained_task, scored_tasks):
        """Token arrays: the training split, and dev/test (None if absent) of each scored task."""
        return {"train": self.arrays.load(pair_encoder, trained_task, "train"),
                "evaluations": {task: {split: self.arrays.load(pair_encoder, task, split) for split in ("dev", "test")}
                                for task in scored_tasks}}

    def store(self, spec, outcome, arrays):
        """Score dev predictions and store the runs with every prediction, in one transaction."""
        config = finetune.FineTuneConfig(**spec["config"])
        runs = []
        for scored_task in spec["scored_tasks"]:
            predictions, scores = [], {}
            for split, split_arrays in arrays["evaluations"][scored_task].items():
                if split_arrays is None:
                    continue
                predicted = outcome["predictions"][scored_task][split]
                labels = split_arrays.get("labels")
                if labels is not None and split == "dev":
                    scores = metrics.compute_metrics(scored_task, labels, predicted)
                predictions += [
                    results.Prediction(
                        split=split,
                        position=position,
                        example_index=str(split_arrays["index"][position]),
                        prediction=float(predicted[position]),
                        label=None if labels is None else float(labels[position]),
                    )
                    for position in range(len(predicted))
                ]
            runs.append(
                results.Run(
                    submission_hash=spec["digest"],
                    submission_name=spec["metadata"]["name"],
                    task=scored_task,
                    seed=spec["seed"],
                    config_hash=results.config_hash(config.to_dict()),
                    config=config.to_dict(),
                    metadata_json=spec["metadata"],
                    metrics=scores,
                    train_examples=len(arrays["train"]["labels"]),
                    wall_seconds=outcome["wall_seconds"],
                    train_sequences_per_second=outcome["train_sequences_per_second"],
                    train_tokens_per_second=outcome["train_tokens_per_second"],
                    hardware=outcome["hardware"],
                    versions=self.versions,
                    finished_at=datetime.datetime.now(datetime.UTC),
                    predictions=predictions,
                )
            )
        self.database.add_runs(runs)


def fine_tune_job(spec, encoder_file, arrays):
    """One job, wherever it runs: fine-tune a fresh copy of the encoder, predict dev and test.

    Takes the encoder file's bytes and the token arrays (`BenchmarkRunner.task_arrays`),
    returns the predictions and throughput as plain data.
    """
    start = time.perf_counter()
    config = finetune.FineTuneConfig(**spec["config"])
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if config.mixed_precision else "float32")
    # Seeded before loading: the encoder's dropout layers draw their seeds when
    # built, so a run must not depend on what this process did before.
    keras.utils.set_random_seed(spec["seed"])
    with tempfile.TemporaryDirectory(prefix="benchmark-encoder-") as folder:
        with open(os.path.join(folder, submissions.ENCODER_FILE), "wb") as handle:
            handle.write(encoder_file)
        encoder = submissions.load_encoder(folder, config.sequence_length)
    if config.mixed_precision:
        encoder = submissions.with_dtype_policy(encoder, "mixed_bfloat16")
    task = tasks.get_task(spec["trained_task"])
    steps = finetune.steps_per_epoch(arrays["train"], config) * config.epochs
    with tqdm(total=steps, desc="  steps", unit="step", leave=False, disable=not spec["progress"]) as step_bar:
        result = finetune.fine_tune(
            encoder, arrays["train"], task.num_classes, config, spec["seed"], callbacks=[finetune.ProgressCallback(step_bar)]
        )
    predictions = {
        scored_task: {split: finetune.predict(result.model, split_arrays, task.num_classes)
                      for split, split_arrays in splits.items() if split_arrays is not None}
        for scored_task, splits in arrays["evaluations"].items()
    }
    return {"predictions": predictions, "wall_seconds": time.perf_counter() - start,
            "train_sequences_per_second": result.train_sequences_per_second,
            "train_tokens_per_second": result.train_tokens_per_second,
            "hardware": results.hardware_description()}
