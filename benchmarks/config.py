"""The fine-tuning recipe's settings, and the command-line options made from them.

Kept apart from `finetune` (which imports Keras) so that the command line
starts without loading Keras.
"""

import argparse
import dataclasses
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
    mixed_precision: bool = option(False, "bf16 mixed precision")
    jit_compile: bool = option(False, "XLA compilation")

    def to_dict(self):
        return dataclasses.asdict(self)


def add_options(parser, grids=()):
    """Add one `--option` per FineTuneConfig field, typed, with its default and help text.

    A field in `grids` takes several values (`--learning-rates 1e-4 3e-5`: one
    config per value, see `config_from_options`).
    """
    for field in dataclasses.fields(FineTuneConfig):
        flag = "--" + field.name.replace("_", "-")
        help = field.metadata["help"] + " (default: %(default)s)"
        if field.type is bool:
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
