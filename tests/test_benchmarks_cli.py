"""`python -m benchmarks run`'s fine-tuning options are made from FineTuneConfig's fields."""

import dataclasses

import pytest

from benchmarks import __main__ as cli
from benchmarks.config import FineTuneConfig, config_from_options, job_environment


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


def test_precision_and_xla_follow_the_hardware_unless_set():
    default = config_from_options(parse_run(), learning_rate=2e-5)
    assert default.mixed_precision is None and default.jit_compile is None  # decided where the jobs run
    assert (default.for_hardware(0).mixed_precision, default.for_hardware(0).jit_compile) == (False, False)
    assert (default.for_hardware(1).mixed_precision, default.for_hardware(1).jit_compile) == (True, True)
    chosen = config_from_options(parse_run("--no-mixed-precision", "--jit-compile"), learning_rate=2e-5)
    assert chosen.for_hardware(1).mixed_precision is False and chosen.for_hardware(0).jit_compile is True


class GpuExecutor(cli.cluster_executor.LocalExecutor):
    def gpu_count(self):
        return 1


def test_runs_are_stored_with_the_precision_of_their_hardware(tmp_path):
    from benchmarks import results, runner

    database = results.ResultsDatabase(str(tmp_path / "results.db"))
    on_cpu = runner.BenchmarkRunner(database, str(tmp_path), ["SST-2"], [0], FineTuneConfig(), str(tmp_path))
    on_gpu = runner.BenchmarkRunner(database, str(tmp_path), ["SST-2"], [0], FineTuneConfig(), str(tmp_path),
                                    executor=GpuExecutor())
    assert on_cpu.config.to_dict()["mixed_precision"] is False and on_cpu.config.jit_compile is False
    assert on_gpu.config.mixed_precision is True and on_gpu.config.jit_compile is True
    assert results.config_hash(on_cpu.config.to_dict()) != results.config_hash(on_gpu.config.to_dict())


def test_several_jobs_per_gpu_need_ray_and_share_its_memory(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "submission", "--jobs-per-gpu", "2"])
    assert "--jobs-per-gpu" in str(stop.value) and "--executor ray" in str(stop.value)
    environment = job_environment(jobs_per_gpu=4)
    assert float(environment["XLA_PYTHON_CLIENT_MEM_FRACTION"]) * 4 <= 0.9
    assert environment["XLA_FLAGS"].count("--xla_gpu_deterministic_ops=true") == 1
