"""The kit's progress bars (rich): one look for every long loop (grading, benchmark runs, training steps)."""

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bars(enabled=True, console=None):
    """A rich `Progress` showing description, bar, done/total, time spent and time left; add tasks to it."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=console, disable=not enabled)
