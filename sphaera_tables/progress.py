"""Progress bars for long steps: rich bars on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@contextmanager
def progress_tracker(enabled: bool = True):
    """Yield ``track(iterable, total, label)``: wraps an iterable in a progress bar.

    Bars are drawn only when ``enabled`` and standard error is a terminal (so logs and pipes
    stay clean); otherwise ``track`` returns the iterable unchanged.
    """
    if not (enabled and sys.stderr.isatty()):
        yield lambda iterable, total, label: iterable
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:

        def track(iterable, total, label):
            return progress.track(iterable, total=total, description=label)

        yield track
