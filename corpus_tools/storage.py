"""Crash-safe files: atomic writes and a lock that keeps two runs out of one results folder."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(target: Path | str):
    """Yield a temporary path beside ``target``; on success it replaces ``target`` at once.

    A reader never sees a half-written file: either the old one, or the complete new one.
    On an exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path | str, data) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def save_npz_atomic(target: Path | str, **arrays) -> None:
    """``numpy.savez`` through :func:`atomic_path` (load with ``allow_pickle=False``)."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def save_npy_atomic(target: Path | str, array: np.ndarray) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


def save_sparse_atomic(target: Path | str, matrix) -> None:
    """A scipy sparse matrix as ``scipy.sparse.save_npz`` writes it, atomically (read it back
    with :func:`load_sparse`: no pickles)."""
    from scipy import sparse

    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            sparse.save_npz(handle, sparse.csr_matrix(matrix))


def load_sparse(path: Path | str):
    """A matrix written by :func:`save_sparse_atomic` (``allow_pickle`` stays off)."""
    from scipy import sparse

    return sparse.load_npz(path)


class FolderLocked(RuntimeError):
    """Another live run holds the results folder."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def folder_lock(folder: Path | str, name: str = ".tables.lock"):
    """Hold ``folder/name`` for the duration of a run.

    A second run into the same folder raises :class:`FolderLocked` naming the holder. A lock
    left behind by a run that died (its process is gone on this host) is taken over.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / name
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _read_holder(lock)
            if holder and holder.get("host") == me["host"] and not _process_alive(holder["pid"]):
                lock.unlink(missing_ok=True)
                continue
            who = f"process {holder['pid']} on {holder['host']}" if holder else "another run"
            raise FolderLocked(
                f"{folder} is in use by {who}; wait for it to finish "
                f"(or delete {lock} if that run is gone)"
            ) from None
        with os.fdopen(fd, "w") as handle:
            json.dump(me, handle)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _read_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
        return holder if isinstance(holder.get("pid"), int) else None
    except (OSError, ValueError, AttributeError):
        return None
