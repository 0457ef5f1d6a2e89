"""Progress on stderr for the commands that run for minutes: images done, rate and time left.

Built on rich.progress (Keras already depends on rich): a live bar where stderr is a terminal,
one plain line per update where it is not (a log file, CI), nothing under --quiet. stdout is
never touched: it carries the command's JSON.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

QUIET_HELP = "No progress on stderr (the JSON on stdout is unchanged)."
SPEED_WINDOW = 1800.0
LINE_WIDTH = 400


class RateColumn(ProgressColumn):
    """Images a second, once there is a rate to show."""

    def render(self, task):
        return Text(f"{task.speed:.2f} images/s" if task.speed else "")


class ImageProgress:
    """A context manager: `advance(n)` after each n images.

    Example:
        with ImageProgress(len(images), "explaining", quiet) as progress:
            for batch in batches:
                ...
                progress.advance(len(batch))
    """

    def __init__(self, total: int, label: str, quiet: bool = False):
        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        if not self.live:  # a log line is as long as it needs: rich would cut it at 80
            self.console = Console(stderr=True, width=LINE_WIDTH)
        self.quiet = quiet
        bar = [BarColumn()] if self.live else []  # a line in a log needs no bar
        self.progress = Progress(
            TextColumn(label), *bar, MofNCompleteColumn(), TextColumn("images"), RateColumn(),
            TimeElapsedColumn(), TextColumn("elapsed,"), TimeRemainingColumn(),
            TextColumn("left"), console=self.console, disable=quiet or not self.live,
            # Updates come a batch of images apart (a minute or two on real films): the rate is
            # the average over the last SPEED_WINDOW seconds, not rich's 30, which would hold
            # one update and show no rate.
            speed_estimate_period=SPEED_WINDOW)
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def advance(self, count: int) -> None:
        self.progress.advance(self.task, count)
        if not self.live and not self.quiet:
            # The same columns, rendered once as a line of text.
            self.console.print(self.progress.make_tasks_table(self.progress.tasks),
                               soft_wrap=True)


def quiet_option(command):
    """--quiet, passed to the command as `quiet`."""
    return click.option("--quiet", is_flag=True, help=QUIET_HELP)(command)
