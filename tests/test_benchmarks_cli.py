"""`python -m benchmarks run`'s fine-tuning options are made from FineTuneConfig's fields."""

import dataclasses

from benchmarks import __main__ as cli
from benchmarks.config import FineTuneConfig, config_from_options


def parse_run(*options):
    return cli.build_parser().parse_args(["run", "submission", *options])


def test_every_setting_is_an_option_with_the_dataclass_default_and_help():
    args = parse_run()
    assert args.learning_rate == [FineTuneConfig.learning_rate]  # a grid: --learning-rates
    assert config_from_options(args, learning_rate=args.learning_rate[0]) == FineTuneConfig()
    run_help = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help().split())
    for field in dataclasses.fields(FineTuneConfig):
        flag = "--" + field.name.replace("_", "-") + ("s" if field.name == "learning_rate" else "")
        assert f"{flag} " in run_help and field.metadata["help"] in run_help


def test_options_reach_the_config_with_their_types():
    args = parse_run("--learning-rates", "1e-3", "3e-4", "--epochs", "2", "--dropout", "0.2",
                     "--max-train-examples", "100", "--mixed-precision")
    config = config_from_options(args, learning_rate=args.learning_rate[1])
    assert config == FineTuneConfig(learning_rate=3e-4, epochs=2, dropout=0.2, max_train_examples=100,
                                    mixed_precision=True)
    assert isinstance(config.epochs, int) and config.max_eval_examples is None
