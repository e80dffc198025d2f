"""The fine-tuning recipe's settings, and the command-line options made from them.

Kept apart from `finetune` (which imports Keras) so that the command line
starts without loading Keras.
"""

import argparse
import dataclasses
import os
import typing


def option(default, help):
    """A recipe setting: its default and the help text of its command-line option."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class FineTuneConfig:
    """The recipe's settings; `python -m benchmarks run` has one option per field (see `add_options`)."""

    learning_rate: float = option(2e-5, "peak learning rate")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and LayerNorm)")
    warmup_ratio: float = option(0.1, "share of the steps with a rising learning rate")
    clipnorm: float = option(1.0, "clip gradients to this global norm")
    epochs: int = option(3, "passes over the training set")
    batch_size: int = option(32, "examples per step")
    dropout: float = option(0.1, "dropout before the classifier head")
    sequence_length: int = option(128, "tokens per example (longer pairs are truncated)")
    max_train_examples: int | None = option(None, "a fixed random subset of the training set (quick runs)")
    max_eval_examples: int | None = option(None, "only the first N dev/test examples (quick runs)")
    # None: decided by the hardware the jobs run on (`for_hardware`): on with a GPU, off on CPUs.
    mixed_precision: bool | None = option(None, "bf16 mixed precision (default: on where the jobs run on GPUs)")
    jit_compile: bool | None = option(None, "XLA compilation (default: on where the jobs run on GPUs)")

    def to_dict(self):
        return dataclasses.asdict(self)

    def for_hardware(self, gpus):
        """This config with the hardware defaults filled in: bf16 and XLA on GPUs, neither on CPUs.

        On a CPU bf16 is slower than float32 and XLA's compile time rarely
        pays back in a short fine-tuning; on a GPU both are what fast
        fine-tuning uses. Runs are stored with the resolved values, so a GPU
        run and a CPU run of one recipe are different runs.
        """
        return dataclasses.replace(self, **{name: bool(gpus) for name in ("mixed_precision", "jit_compile")
                                            if getattr(self, name) is None})


def add_options(parser, grids=()):
    """Add one `--option` per FineTuneConfig field, typed, with its default and help text.

    A field in `grids` takes several values (`--learning-rates 1e-4 3e-5`: one
    config per value, see `config_from_options`).
    """
    for field in dataclasses.fields(FineTuneConfig):
        flag = "--" + field.name.replace("_", "-")
        help = field.metadata["help"] + " (default: %(default)s)"
        if bool in (field.type, *typing.get_args(field.type)):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default, help=help)
            continue
        value_type = next(t for t in typing.get_args(field.type) or (field.type,) if t is not type(None))
        if field.name in grids:
            parser.add_argument(flag + "s", dest=field.name, type=value_type, nargs="+", default=[field.default],
                                help=help + "; several values: a grid, the best on dev is reported")
        else:
            parser.add_argument(flag, type=value_type, default=field.default, help=help)


def config_from_options(args, **overrides):
    """The FineTuneConfig of parsed `add_options` arguments, with `overrides` (one value of each grid)."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(FineTuneConfig)
              if hasattr(args, field.name)}
    return FineTuneConfig(**(values | overrides))


def job_environment(jobs_per_gpu=1):
    """Environment variables for fine-tuning jobs, to set before the Keras backend starts.

    Deterministic GPU kernels (XLA's and cuBLAS's; TensorFlow's are switched
    on by the job itself, see `runner.fine_tune_job`), so that a rerun on the
    same GPU gives the same scores: a board must not reorder on a rerun. With
    several jobs per GPU each job takes its share of the GPU's memory instead
    of JAX's default 75% (TensorFlow grows on demand).
    """
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if "--xla_gpu_deterministic_ops" not in xla_flags:
        xla_flags = f"{xla_flags} --xla_gpu_deterministic_ops=true".strip()
    environment = {"XLA_FLAGS": xla_flags, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    if jobs_per_gpu > 1:
        environment |= {"XLA_PYTHON_CLIENT_MEM_FRACTION": f"{0.9 / jobs_per_gpu:.3f}", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
    return environment
