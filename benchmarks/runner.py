"""Runs submissions x tasks x seeds, storing each finished run in the database.

Stages for each (submission, task, seed):
1. check the submission (metadata, safe load of the model of any family, its
   tokenizer against the model's vocabulary); a broken
   one gets a failure row and the others go on (driver);
2. read the task's splits and tokenize them (cached .npz arrays); a missing
   or bad file, or a label word a text-to-text tokenizer cannot write, is a
   failure row for the task, naming the file or the word (driver);
3. load a fresh copy of the model, fine-tune it with its family's head, predict
   dev (and test, for the GLUE server) (the job: here, or a Ray task); a
   text-to-text model's predictions are its answers' token ids;
4. read text-to-text answers back as labels with the submission's tokenizer,
   score dev and store the run and its predictions in one transaction (driver).

MNLI is fine-tuned once, as "MNLI-m"; that model also predicts MNLI-mm and AX,
each stored as its own run. Runs already in the database for the same data
(a digest of the task's files) are skipped.
"""

import dataclasses
import datetime
import hashlib
import os
import tempfile
import time

import keras
import numpy as np

from benchmarks import encoding, finetune, metrics, results, splits, submissions, tasks
from cluster import executor as cluster_executor
from cluster.progress import progress_bars

EVALUATION_SPLITS = ("dev", "test")
# A task's data that cannot be read, or that the submission's tokenizer cannot encode: a failure row for the task.
TASK_ERRORS = (tasks.GlueDataError, encoding.TaskEncodingError)


@dataclasses.dataclass(frozen=True)
class BenchmarkJob:
    """One fine-tuning of one submission on one task with one seed, and the tasks its model is scored on."""

    submission_hash: str
    metadata: dict
    trained_task: str
    scored_tasks: tuple
    seed: int
    config: finetune.FineTuneConfig
    data_hashes: dict  # scored task -> digest of the data its run is keyed by


@dataclasses.dataclass
class TaskData:
    """Token arrays of one fine-tuning: the training split, and each scored task's dev and test (None if absent)."""

    train: dict
    evaluations: dict  # scored task -> split -> arrays or None
    decoding: dict | None = None  # a text-to-text model: how it writes answers (`finetune.predict`)


@dataclasses.dataclass
class JobOutcome:
    """What a job sends back: predictions (scored task -> split -> values) and throughput."""

    predictions: dict
    wall_seconds: float
    train_sequences_per_second: float
    train_tokens_per_second: float
    hardware: str


class TaskArrays:
    """Reads, subsamples and tokenizes a task's splits for one tokenizer."""

    def __init__(self, glue_dir, cache_dir, config):
        self.glue_dir = glue_dir
        self.cache_dir = cache_dir
        self.config = config
        self.digests = {}  # (task name, split) -> data digest, each file read once per run

    def data_digest(self, task_name, split):
        if (task_name, split) not in self.digests:
            self.digests[task_name, split] = tasks.data_digest(self.glue_dir, tasks.get_task(task_name), split)
        return self.digests[task_name, split]

    def load(self, pair_encoder, task_name, split):
        """Arrays for one split; None for an absent split the task does not require."""
        task = tasks.get_task(task_name)
        if split not in task.required_splits and not tasks.has_split(self.glue_dir, task, split):
            return None
        examples = tasks.read_split(self.glue_dir, task, split)  # a missing file: GlueDataError naming it
        if split == "train" and self.config.max_train_examples:
            examples = sample(examples, self.config.max_train_examples)
        elif split != "train" and self.config.max_eval_examples:
            examples = examples.head(self.config.max_eval_examples)
        arrays = encoding.cached_encode(pair_encoder, task.name, examples, self.data_digest(task.name, split),
                                        self.cache_dir, f"{task.name}-{split}")
        if split == "dev":
            arrays["private"] = splits.private_mask(examples.texts)
        return arrays

    def run_key(self, trained_task, scored_task):
        """Digest of the data a run depends on: the training split and the scored task's dev and test."""
        parts = [self.data_digest(trained_task, "train")]
        parts += [self.data_digest(scored_task, split) for split in EVALUATION_SPLITS]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def sample(examples, count):
    """The same `count` examples for every submission and seed (fixed generator)."""
    if count >= len(examples):
        return examples
    return examples.select(np.sort(np.random.default_rng(0).choice(len(examples), count, replace=False)))


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
    database. Each job gets its data as values (the encoder file's bytes,
    token arrays), so it runs here, one after another (the default), or as a
    Ray task on a cluster.
    """

    def __init__(self, database, glue_dir, task_names, seeds, config, cache_dir, progress=True,
                 executor=None):
        self.database = database
        self.glue_dir = glue_dir
        self.plan = planned_tasks(task_names)
        self.seeds = list(seeds)
        self.executor = executor or cluster_executor.LocalExecutor()
        self.config = config.for_hardware(self.executor.gpu_count())
        self.arrays = TaskArrays(glue_dir, cache_dir, self.config)
        self.progress = progress
        self.versions = results.library_versions()
        # Submission hash -> its tokenizer, which reads a text-to-text model's answers back (the jobs hold arrays only).
        self.tokenizers = {}

    def run(self, submission_folders):
        jobs, skipped = [], 0
        for folder in submission_folders:
            submission_jobs, submission_skipped = self.submission_jobs(folder)
            jobs += submission_jobs
            skipped += submission_skipped
        total = len(submission_folders) * len(self.plan) * len(self.seeds)
        with progress_bars(self.progress) as bars:
            runs = bars.add_task("runs", total=total, completed=skipped)
            # Step bars only for jobs in this process: they draw on this terminal.
            step_bars = bars if self.progress and self.executor.in_process else None
            arguments = [(job, encoder_file, data, step_bars) for job, encoder_file, data in jobs]
            for (job, _, data, _), outcome, lost in self.executor.completed(fine_tune_job, arguments):
                if lost:
                    self.database.add_failure(job.submission_hash, job.metadata["name"], job.trained_task, str(lost))
                else:
                    self.store(job, outcome, self.executor.fetch(data))
                bars.update(runs, advance=1, description=f"{job.metadata['name']} {job.trained_task} seed {job.seed}")

    def submission_jobs(self, folder):
        """Check a submission and read its tasks' data; (jobs still to run, runs skipped).

        A broken submission gets one failure row and no jobs; a task whose
        data cannot be read gets a failure row naming the file; the other
        submissions and tasks go on.
        """
        digest = submissions.submission_hash(folder)
        name = os.path.basename(os.path.normpath(folder))
        try:
            metadata = submissions.read_metadata(folder)
            name = metadata["name"]
            model = submissions.load_model(folder, self.config.sequence_length)
            pair_encoder = submissions.load_tokenizer(folder, metadata, self.config.sequence_length, model)
            metadata = submissions.describe(folder, metadata, model)
            if metadata.get("student"):
                self.database.admit_scored_submission(metadata["student"], digest, name)
        except (submissions.SubmissionError, ValueError, splits.DailyLimitReached) as error:
            self.database.add_failure(digest, name, "*", str(error))
            return [], len(self.plan) * len(self.seeds)
        self.database.clear_failures(digest)
        self.tokenizers[digest] = pair_encoder
        encoder_file = self.executor.share(submissions.model_files(folder))
        jobs, skipped = [], 0
        for trained_task, scored_tasks in self.plan.items():
            data_hashes = {task: self.arrays.run_key(trained_task, task) for task in scored_tasks}
            pending = {seed: [task for task in scored_tasks if not self.database.has_run(
                digest, task, seed, self.config.to_dict(), data_hashes[task])] for seed in self.seeds}
            pending = {seed: names for seed, names in pending.items() if names}
            skipped += len(self.seeds) - len(pending)
            if not pending:
                continue
            data = self.task_data(pair_encoder, trained_task, sorted({t for names in pending.values() for t in names}),
                                  digest, name)
            if data is None:
                skipped += len(pending)
                continue
            shared = self.executor.share(data)
            for seed, names in pending.items():
                names = tuple(task for task in names if task in data.evaluations)
                if not names:
                    skipped += 1
                    continue
                job = BenchmarkJob(digest, metadata, trained_task, names, seed, self.config,
                                   {task: data_hashes[task] for task in names})
                jobs.append((job, encoder_file, shared))
        return jobs, skipped

    def task_data(self, pair_encoder, trained_task, scored_tasks, digest, name):
        """The token arrays of one fine-tuning, or None; each task whose data cannot be read gets a failure row."""
        try:
            train = self.arrays.load(pair_encoder, trained_task, "train")
            decoding = pair_encoder.decoding(trained_task)
        except TASK_ERRORS as error:
            for task in scored_tasks:
                self.database.add_failure(digest, name, task, str(error))
            return None
        evaluations = {}
        for task in scored_tasks:
            try:
                evaluations[task] = {split: self.arrays.load(pair_encoder, task, split) for split in EVALUATION_SPLITS}
            except TASK_ERRORS as error:
                self.database.add_failure(digest, name, task, str(error))
        return TaskData(train, evaluations, decoding) if evaluations else None

    def store(self, job, outcome, data):
        """Score dev predictions and store the runs with every prediction, in one transaction."""
        runs = []
        for scored_task in job.scored_tasks:
            predictions, scores, halves = [], {}, {}
            for split, split_arrays in data.evaluations[scored_task].items():
                if split_arrays is None:
                    continue
                predicted = self.tokenizers[job.submission_hash].predictions(
                    scored_task, outcome.predictions[scored_task][split])
                labels = split_arrays.get("labels")
                if labels is not None and split == "dev":
                    scores = metrics.compute_metrics(scored_task, labels, predicted)
                    halves = split_scores(scored_task, labels, predicted, split_arrays["private"])
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
                    submission_hash=job.submission_hash,
                    submission_name=job.metadata["name"],
                    task=scored_task,
                    seed=job.seed,
                    config_hash=results.config_hash(job.config.to_dict()),
                    config=job.config.to_dict(),
                    data_hash=job.data_hashes[scored_task],
                    metadata_json=job.metadata,
                    metrics=scores,
                    public_metrics=halves.get("public"),
                    private_metrics=halves.get("private"),
                    train_examples=len(data.train["labels"]),
                    wall_seconds=outcome.wall_seconds,
                    train_sequences_per_second=outcome.train_sequences_per_second,
                    train_tokens_per_second=outcome.train_tokens_per_second,
                    hardware=outcome.hardware,
                    versions=self.versions,
                    finished_at=datetime.datetime.now(datetime.UTC),
                    predictions=predictions,
                )
            )
        self.database.add_runs(runs)


def split_scores(task, labels, predicted, private):
    """{"public": metrics, "private": metrics} on the two halves of dev (a half of fewer than 2 examples: absent)."""
    halves = {}
    for name, mask in (("public", ~private), ("private", private)):
        if mask.sum() >= 2:
            halves[name] = metrics.compute_metrics(task, labels[mask], predicted[mask])
    return halves


def fine_tune_job(job, model_files, data, step_bars=None):
    """One job, wherever it runs: fine-tune a fresh copy of the model, predict dev and test.

    Takes the model's files ({name: bytes}) and the token arrays (`TaskData`), returns
    a `JobOutcome`. `step_bars`: a rich Progress of this terminal to show the
    training steps on (jobs in the driver's process only).
    """
    start = time.perf_counter()
    config = job.config
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16" if config.mixed_precision else "float32")
    # Seeded before loading: the encoder's dropout layers draw their seeds when
    # built, so a run must not depend on what this process did before.
    keras.utils.set_random_seed(job.seed)
    if keras.backend.backend() == "tensorflow" and cluster_executor.local_gpu_count():
        import tensorflow as tf

        # Only where there is a GPU: on CPUs it changes nothing but makes unseeded random ops raise.
        tf.config.experimental.enable_op_determinism()
    with tempfile.TemporaryDirectory(prefix="benchmark-encoder-") as folder:
        for name, content in model_files.items():
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(content)
        encoder = submissions.load_model(folder, config.sequence_length,
                                         "mixed_bfloat16" if config.mixed_precision else None)
    task = tasks.get_task(job.trained_task)
    callbacks = []
    if step_bars is not None:
        steps = finetune.steps_per_epoch(data.train, config) * config.epochs
        step_task = step_bars.add_task("  steps", total=steps)
        callbacks.append(finetune.ProgressCallback(step_bars, step_task))
    try:
        result = finetune.fine_tune(encoder, data.train, task.num_classes, config, job.seed, callbacks=callbacks,
                                    family=job.metadata.get("family"), pooling=job.metadata.get("pooling"))
    finally:
        if step_bars is not None:
            step_bars.remove_task(step_task)
    predictions = {
        scored_task: {split: finetune.predict(result.model, split_arrays, task.num_classes, data.decoding)
                      for split, split_arrays in splits.items() if split_arrays is not None}
        for scored_task, splits in data.evaluations.items()
    }
    return JobOutcome(predictions, time.perf_counter() - start, result.train_sequences_per_second,
                      result.train_tokens_per_second, results.hardware_description())
