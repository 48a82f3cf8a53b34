"""Where the per-page work runs: in this process, in worker processes on this machine, or on a
Dask cluster.

Per-page tasks are idempotent and write their own results (see the pipeline), so an executor
only has to run ``fn(item)`` for every item and hand back small return values as they finish.
Results are identical whichever executor runs them: callers key results by item, never by
completion order (and the detector's convolutions give the same maps at any thread count).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


class LocalExecutor:
    """Runs tasks one after another in this process (no extra dependencies)."""

    description = "local (this process)"

    def imap_unordered(self, fn: Callable, items: Iterable) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(item))`` for every item."""
        for item in items:
            yield item, fn(item)

    def close(self) -> None:
        """Nothing to release."""


class ProcessExecutor:
    """Runs tasks in ``workers`` processes on this machine (standard library), each with its
    share of the cores as torch threads. Submission is bounded (at most ``4 x workers`` tasks
    in flight) so the driver never holds every page at once. Processes are started fresh
    ("spawn"): a forked copy of a process that already ran torch can hang. Each worker holds
    the page it analyses (0.5-1 GB for pages of 1-6 megapixels), so memory grows with
    ``workers``."""

    def __init__(self, workers: int):
        self.workers = workers
        threads = max(1, usable_cores() // workers)
        self._pool = ProcessPoolExecutor(max_workers=workers,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(threads,))
        self.description = f"{workers} processes on this machine, {threads} threads each"

    def imap_unordered(self, fn: Callable, items: Iterable) -> Iterator[tuple[Any, Any]]:
        """Yield ``(item, fn(item))`` for every item, as they finish."""
        finished = _bounded(items, 4 * self.workers, lambda item: self._pool.submit(fn, item),
                            lambda pending: wait(pending, return_when=FIRST_COMPLETED)[0])
        for item, future in finished:
            try:
                result = future.result()
            except BrokenProcessPool as error:
                raise RuntimeError(
                    "a worker process died (out of memory?); finished pages are kept: rerun "
                    "with fewer --workers to go on") from error
            yield item, result

    def close(self) -> None:
        """Stop the processes (tasks not started are dropped: a rerun does them)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(threads: int) -> None:
    """Set a worker's torch threads."""
    import torch

    torch.set_num_threads(threads)


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class DaskExecutor:
    """Runs tasks on the existing Dask distributed cluster at ``scheduler`` (e.g.
    ``tcp://10.0.0.5:8786``), to spread a corpus over several machines.

    Needs the optional extra: ``pip install 'sphaera-tables[dask]'``. Submission is bounded
    (at most ``4 x workers`` tasks in flight) so the driver never holds every page at once.
    """

    def __init__(self, scheduler: str):
        try:
            from dask.distributed import Client
        except ImportError as exc:
            raise RuntimeError(
                "Dask is not installed: pip install 'sphaera-tables[dask]' to use --scheduler"
            ) from exc
        self._client = Client(scheduler)
        n_workers = len(self._client.scheduler_info().get("workers", {})) or 1
        self._window = 4 * n_workers
        self.description = f"dask ({n_workers} workers at {self._client.scheduler.address})"

    def imap_unordered(self, fn: Callable, items: Iterable) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import wait as wait_dask

        finished = _bounded(items, self._window,
                            lambda item: self._client.submit(fn, item, pure=False),
                            lambda pending: wait_dask(list(pending),
                                                      return_when="FIRST_COMPLETED").done)
        for item, future in finished:
            result = future.result()
            future.release()
            yield item, result

    def close(self) -> None:
        self._client.close()


def _bounded(items: Iterable, window: int, submit: Callable, finished: Callable
             ) -> Iterator[tuple[Any, Any]]:
    """``(item, future)`` for every item as its future finishes, with at most ``window``
    submitted and unfinished at once: ``submit(item)`` starts one, ``finished(futures)`` waits
    for at least one of them and returns those done."""
    items = iter(items)
    pending = {}
    for item in itertools.islice(items, window):
        pending[submit(item)] = item
    while pending:
        for future in finished(pending):
            item = pending.pop(future)
            for following in itertools.islice(items, 1):
                pending[submit(following)] = following
            yield item, future


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """The executor for the command-line options: the Dask cluster at ``scheduler``; else
    ``workers`` processes on this machine; this process for one or none."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler is not None:
        return DaskExecutor(scheduler)
    return ProcessExecutor(workers) if workers is not None and workers > 1 else LocalExecutor()
