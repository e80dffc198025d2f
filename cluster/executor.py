"""Run independent jobs and hand back each result as it finishes.

Grading (one job per submission) and benchmarking (one job per submission,
task and seed) both go through an executor. The caller, the driver, is the
only process that reads the course or submission folders and writes to the
gradebook or the results database; jobs take and return plain data, so they
can run anywhere:

- `LocalExecutor` (default): in this process, or in a pool of spawned local
  processes;
- `RayExecutor`: one Ray task per job on a Ray cluster (https://docs.ray.io).
  We use Ray rather than a home-made scheduler: it places each task where its
  declared resources (CPUs, a GPU) are free, sets CUDA_VISIBLE_DEVICES for
  GPU tasks, runs on Kubernetes (KubeRay) or Slurm, and re-runs a task whose
  worker process or node died (`max_retries`).

A job is a tuple of arguments for the job function. Large values that many
jobs read (an encoder's weights, a task's token arrays) go through `share()`
first: Ray then stores them once per cluster instead of once per job.
"""

import concurrent.futures
import multiprocessing

EXECUTORS = ("local", "ray")


class JobLost(RuntimeError):
    """A job that raised, or whose worker died more often than it may be retried."""


class LocalExecutor:
    """Jobs in this process, one after another (`processes=None`), or in a process pool.

    `initializer` runs once in each pool process.
    """

    def __init__(self, processes=None, initializer=None):
        self.processes = processes
        self.initializer = initializer
        self.in_process = processes is None  # jobs can draw progress bars on this terminal

    def gpu_count(self):
        """GPUs the jobs can use: those of this process's Keras backend."""
        return local_gpu_count()

    def share(self, value):
        return value

    def fetch(self, shared):
        """The value behind a `share()` handle, in the driver."""
        return shared

    def completed(self, function, jobs):
        """Yield (job, result, error) as each `function(*job)` finishes; error is a JobLost or None."""
        jobs = list(jobs)
        if self.processes is None:
            for job in jobs:
                try:
                    yield job, function(*job), None
                except Exception as error:  # noqa: BLE001 - reported with its job; the rest go on
                    yield job, None, JobLost(f"{type(error).__name__}: {error}")
            return
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.processes, mp_context=context,
                                                    initializer=self.initializer) as pool:
            futures = {pool.submit(function, *job): job for job in jobs}
            for future in concurrent.futures.as_completed(futures):
                try:
                    yield futures[future], future.result(), None
                except Exception as error:  # noqa: BLE001
                    yield futures[future], None, JobLost(f"{type(error).__name__}: {error}")


class RayExecutor:
    """One Ray task per job on the cluster at `address` (None: $RAY_ADDRESS, else a new local Ray).

    Each task declares `num_cpus` and `num_gpus` ("auto": 1 / `jobs_per_gpu`
    of a GPU when the cluster has any, so Ray runs that many jobs on each
    GPU). `env_vars` are set in the workers, which do not inherit the
    driver's environment (e.g. KERAS_BACKEND). A task whose worker or node is
    lost is re-run elsewhere up to `max_retries` times.
    """

    def __init__(self, address=None, num_cpus=1, num_gpus=0, env_vars=None, max_retries=3, jobs_per_gpu=1):
        import ray

        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": dict(env_vars or {})})
        if num_gpus == "auto":
            num_gpus = 1 / jobs_per_gpu if self.gpu_count() else 0
        self.options = dict(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)
        self.in_process = False

    def gpu_count(self):
        """GPUs in the Ray cluster."""
        return int(self.ray.cluster_resources().get("GPU", 0))

    def share(self, value):
        return self.ray.put(value)

    def fetch(self, shared):
        return self.ray.get(shared)

    def completed(self, function, jobs):
        """Yield (job, result, error) as each task finishes; error is a JobLost or None."""
        task = self.ray.remote(**self.options)(function)
        pending = {task.remote(*job): job for job in jobs}
        while pending:
            [done], _ = self.ray.wait(list(pending), num_returns=1)
            job = pending.pop(done)
            try:
                yield job, self.ray.get(done), None
            except self.ray.exceptions.RayError as error:
                cause = getattr(error, "cause", None)  # the job's own exception, if it raised
                summary = f"{type(cause).__name__}: {cause}" if cause else str(error).strip().splitlines()[0]
                yield job, None, JobLost(summary)


def local_gpu_count():
    """GPUs this process's Keras backend sees (0 on a CPU-only host)."""
    import keras

    try:
        return len(keras.distribution.list_devices("gpu"))
    except RuntimeError:  # JAX raises when it has no GPU platform
        return 0


def make_executor(kind="local", ray_address=None, **options):
    """`kind` "local" (options: processes, initializer) or "ray" (options: num_cpus, num_gpus, env_vars, jobs_per_gpu)."""
    if kind == "local":
        return LocalExecutor(options.get("processes"), options.get("initializer"))
    if kind == "ray":
        return RayExecutor(ray_address, **{k: v for k, v in options.items()
                                           if k in ("num_cpus", "num_gpus", "env_vars", "jobs_per_gpu")})
    raise ValueError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
