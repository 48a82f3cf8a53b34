"""Crash-safe files: atomic writes and a lock that keeps two runs out of one results folder."""

from __future__ import annotations

import errno
import json
import os
import socket
import tempfile
import time
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

    A reader never sees a half-written file: either the old one, or the complete new one. The
    new file's bytes reach the disk (fsync) before the rename, and the rename before this
    returns, so that a power cut leaves no empty file under the target's name either.
    On an exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        yield Path(tmp)
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, target)
        _fsync(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fsync(path, flags: int) -> None:
    """Flush a file's (or a folder's) data to the disk; folders that refuse it are left."""
    try:
        fd = os.open(path, flags)
    except (IsADirectoryError, PermissionError):
        return
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_text_atomic(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(target: Path | str, data) -> None:
    write_text_atomic(target, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


JPEG_END = b"\xff\xd9"
PNG_END = b"IEND\xaeB`\x82"
"""The last bytes of a complete JPEG (end-of-image marker) and PNG (IEND chunk)."""


def ends_complete(path: Path | str, trailer: bytes) -> bool:
    """Whether the file at ``path`` exists and ends with ``trailer``: a 0-byte or truncated
    picture (a disk that filled up, a copy cut short) is found without decoding it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() < len(trailer):
                return False
            handle.seek(-len(trailer), os.SEEK_END)
            return handle.read() == trailer
    except OSError:
        return False


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (or hide its start)."""


def spreadsheet_safe(value):
    """A CSV cell that a spreadsheet shows as text instead of running it: text starting with
    one of :data:`FORMULA_STARTS`, or with an apostrophe, gets a leading apostrophe (the quote
    spreadsheets hide); :func:`csv_cell_text` undoes it exactly. Other values pass unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def csv_cell_text(cell: str) -> str:
    """The text a cell written through :func:`spreadsheet_safe` stood for."""
    return cell[1:] if cell.startswith("'") else cell


def write_csv_atomic(target: Path | str, frame) -> None:
    """A pandas DataFrame as CSV (no index), its text cells made :func:`spreadsheet_safe`.

    Rows end in CRLF, as RFC 4180 and Python's csv module have it: a line break of either kind
    inside a cell is then quoted (with a bare LF ending the rows, a CR in a cell is not).
    """
    text_columns = frame.select_dtypes(include=["object", "string"]).columns
    safe = frame.copy()
    safe[text_columns] = safe[text_columns].map(spreadsheet_safe)
    write_text_atomic(target, safe.to_csv(index=False, lineterminator="\r\n"))


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


UNREADABLE_LOCK_GRACE_S = 10.0
"""A lock file whose holder cannot be read (left by an older version that ran out of disk space
while writing it) is taken over once it is this old."""


@contextmanager
def folder_lock(folder: Path | str, name: str = ".tables.lock"):
    """Hold ``folder/name`` for the duration of a run.

    A second run into the same folder raises :class:`FolderLocked` naming the holder. A lock
    left behind by a run that died (its process is gone on this host) is taken over. The lock
    file appears complete or not at all (written beside it, then hard-linked into place): a
    run that cannot write it (disk full) fails with that error and blocks no later run.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / name
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(2):
        try:
            _create_lock(lock, json.dumps(me))
        except FileExistsError:
            holder = _read_holder(lock)
            if _stale(lock, holder, me["host"]):
                lock.unlink(missing_ok=True)
                continue
            who = f"process {holder['pid']} on {holder['host']}" if holder else "another run"
            raise FolderLocked(
                f"{folder} is in use by {who}; wait for it to finish "
                f"(or delete {lock} if that run is gone)"
            ) from None
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _create_lock(lock: Path, text: str) -> None:
    """Create ``lock`` holding ``text``, atomically; FileExistsError when it exists."""
    fd, tmp = tempfile.mkstemp(prefix=f"{lock.name}.", suffix=".part", dir=lock.parent)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
        os.close(fd)
        fd = -1
        os.link(tmp, lock)
    finally:
        if fd >= 0:
            os.close(fd)
        os.remove(tmp)


def _stale(lock: Path, holder: dict | None, host: str) -> bool:
    """Whether a lock file is left over: its process is gone from this host, or its holder
    cannot be read and it is older than :data:`UNREADABLE_LOCK_GRACE_S`."""
    if holder is not None:
        return holder.get("host") == host and not _process_alive(holder["pid"])
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return True
    return age > UNREADABLE_LOCK_GRACE_S


def _read_holder(lock: Path) -> dict | None:
    try:
        holder = json.loads(lock.read_text())
        return holder if isinstance(holder.get("pid"), int) else None
    except (OSError, ValueError, AttributeError):
        return None
