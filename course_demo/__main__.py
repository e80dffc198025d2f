"""Run the demo: `python -m course_demo [--quick] [--output DIR]`."""

import argparse
from pathlib import Path

from course_demo.console import progress, quiet_frameworks


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course_demo", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("demo_output"),
                        help="folder for everything the demo writes (default: demo_output)")
    parser.add_argument("--cache", type=Path, default=Path(".cache"),
                        help="reused between runs: trained tokenizers, encoded data")
    parser.add_argument("--quick", action="store_true", help="a short run (used by the tests)")
    args = parser.parse_args(argv)
    quiet_frameworks()
    from rich.console import Console

    from course_demo import steps

    args.output.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    state = {"output": args.output, "cache": args.cache, "quick": args.quick,
             "console": Console(), "progress": progress}
    steps.run(state)


if __name__ == "__main__":
    main()
