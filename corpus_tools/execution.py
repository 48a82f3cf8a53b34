"""Where the per-page work runs: in this process, or on a Dask cluster.

Per-page tasks are idempotent and write their own results (see the pipeline), so an executor
only has to run ``fn(item)`` for every item and hand back small return values as they finish.
Results are identical whichever executor runs them: callers key results by item, never by
completion order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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


class DaskExecutor:
    """Runs tasks on a Dask distributed cluster: a local one with ``workers`` processes, or the
    existing scheduler at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``).

    Needs the optional extra: ``pip install 'sphaera-tables[dask]'``. Submission is bounded
    (at most ``4 x workers`` tasks in flight) so the driver never holds every page at once.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise RuntimeError(
                "Dask is not installed: pip install 'sphaera-tables[dask]' to use --workers or "
                "--scheduler"
            ) from exc
        if scheduler:
            self._cluster = None
            self._client = Client(scheduler)
        else:
            self._cluster = LocalCluster(
                n_workers=workers or 2, threads_per_worker=1, processes=True,
                dashboard_address=None,
            )
            self._client = Client(self._cluster)
        n_workers = len(self._client.scheduler_info().get("workers", {})) or (workers or 1)
        self._window = 4 * n_workers
        self.description = f"dask ({n_workers} workers at {self._client.scheduler.address})"

    def imap_unordered(self, fn: Callable, items: Iterable) -> Iterator[tuple[Any, Any]]:
        from dask.distributed import as_completed

        items = iter(items)
        pending = as_completed()
        owner = {}

        def submit_next() -> bool:
            for item in items:
                future = self._client.submit(fn, item, pure=False)
                owner[future.key] = item
                pending.add(future)
                return True
            return False

        for _ in range(self._window):
            if not submit_next():
                break
        for future in pending:
            item = owner.pop(future.key)
            result = future.result()
            future.release()
            submit_next()
            yield item, result

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """The executor for the command-line options: local unless ``workers`` or ``scheduler``."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if workers is None and scheduler is None:
        return LocalExecutor()
    return DaskExecutor(workers=workers, scheduler=scheduler)
