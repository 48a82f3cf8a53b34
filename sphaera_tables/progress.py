"""The toolkit's one progress protocol, and the bar that shows it on a terminal.

A long step takes a ``progress`` callback and calls ``progress(done, total, message)``: ``done``
units of ``total`` finished so far (non-decreasing, ending at ``total``), ``message`` naming the
step ("Analysing pages"). A step reporting ``(0, total)`` first shows its bar at once. Library
code defaults to :func:`silent`; a command renders the calls with :func:`progress_bar` (one rich
bar per message, on standard error, only on a terminal, none with ``--quiet``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

Progress = Callable[..., None]
"""``progress(done: int, total: int, message: str = "") -> None``."""
T = TypeVar("T")

quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
"""The ``--quiet`` flag of every command with long steps."""


def silent(done: int, total: int, message: str = "") -> None:
    """The progress callback that shows nothing."""


def tracked(items: Iterable[T], total: int, progress: Progress, message: str) -> Iterator[T]:
    """Yield ``items``, reporting ``(0, total)`` first and ``(k, total)`` once item ``k`` is done.

    "Done" means the consumer asked for the next item (or the loop ended).
    """
    progress(0, total, message)
    done = 0
    for item in items:
        yield item
        done += 1
        progress(done, total, message)


def relabelled(progress: Progress, message: str) -> Progress:
    """``progress`` with every call's message replaced by ``message`` (a step inside a step)."""
    return lambda done, total, _message="": progress(done, total, message)


def stderr_is_terminal() -> bool:
    """Whether bars can be drawn (standard error is a terminal; logs and pipes stay clean)."""
    return sys.stderr.isatty()


@contextmanager
def progress_bar(quiet: bool = False) -> Iterator[Progress]:
    """Yield a :data:`Progress` callback drawing one rich bar per message on standard error.

    With ``quiet``, or when standard error is no terminal, the callback is :func:`silent`.
    """
    if quiet or not stderr_is_terminal():
        yield silent
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with RichProgress(*columns, console=Console(stderr=True)) as bars:
        tasks: dict[str, int] = {}

        def progress(done: int, total: int, message: str = "") -> None:
            if message not in tasks:
                tasks[message] = bars.add_task(message, total=total)
            bars.update(tasks[message], completed=done, total=total)

        yield progress
