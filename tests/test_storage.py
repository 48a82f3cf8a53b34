"""Crash-safe files of corpus_tools.storage: each promise with a known answer (round trips byte
for byte, permissions, UTF-8 whatever the locale, the lock's stale rules, a full disk)."""

import errno
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from corpus_tools import storage
from corpus_tools.storage import (
    JPEG_END,
    PNG_END,
    UNREADABLE_LOCK_GRACE_S,
    FolderLocked,
    atomic_path,
    ends_complete,
    folder_lock,
    load_sparse,
    save_npy_atomic,
    save_sparse_atomic,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# atomic writes ---------------------------------------------------------------------------------

def test_text_and_json_are_written_as_utf8_with_the_documented_layout(tmp_path):
    write_text_atomic(tmp_path / "sub" / "a.txt", "Sphæra ΑΒΓ\n")
    assert (tmp_path / "sub" / "a.txt").read_bytes() == "Sphæra ΑΒΓ\n".encode()
    write_json_atomic(tmp_path / "b.json", {"title": "Sphæra", "n": [1, 2]})
    assert (tmp_path / "b.json").read_bytes() == (
        '{\n  "title": "Sphæra",\n  "n": [\n    1,\n    2\n  ]\n}\n').encode()
    assert _leftovers(tmp_path, {"sub", "b.json"}) == []


def test_text_is_utf8_under_a_plain_ascii_locale(tmp_path):
    """A Windows or C-locale machine must write the same bytes: UTF-8 is said, not assumed."""
    write_text_atomic(tmp_path / "here.txt", "Sphæra")  # (ties this test to the function
    # for the mutation run, which picks the tests to run by what they call in-process)
    target = tmp_path / "a.txt"
    code = ("import sys; from corpus_tools.storage import write_text_atomic; "
            "write_text_atomic(sys.argv[1], 'Sph\\u00e6ra')")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0",
           "PYTHONCOERCECLOCALE": "0", "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code, str(target)], env=env, check=True,
                   capture_output=True)
    assert target.read_bytes() == "Sphæra".encode()


def test_new_files_get_the_permissions_the_umask_allows(tmp_path):
    old = os.umask(0o027)
    try:
        assert storage._current_umask() == 0o027
        assert os.umask(0o027) == 0o027  # asking left the umask as it was
    finally:
        os.umask(old)
    write_text_atomic(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~old


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.npy"
    save_npy_atomic(target, np.arange(3))
    with pytest.raises(ValueError):
        save_npy_atomic(target, _Unsaveable())
    np.testing.assert_array_equal(np.load(target, allow_pickle=False), np.arange(3))
    assert _leftovers(tmp_path, {"a.npy"}) == []


class _Unsaveable:
    def __array__(self, *args, **kwargs):
        raise ValueError("cannot be an array")


def test_npy_and_sparse_round_trip_exactly_without_pickles(tmp_path):
    array = np.random.default_rng(0).random((4, 3)).astype(np.float32)
    save_npy_atomic(tmp_path / "a.npy", array)
    loaded = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array)
    dense = np.zeros((3, 1000))
    dense[0, 7], dense[2, 999] = 1.5, -2.0
    save_sparse_atomic(tmp_path / "s.npz", sparse.coo_matrix(dense))
    matrix = load_sparse(tmp_path / "s.npz")
    assert sparse.issparse(matrix) and matrix.format == "csr" and matrix.shape == (3, 1000)
    np.testing.assert_array_equal(matrix.toarray(), dense)
    assert _leftovers(tmp_path, {"a.npy", "s.npz"}) == []


def test_csv_rows_end_in_crlf_without_an_index(tmp_path):
    write_csv_atomic(tmp_path / "a.csv", pd.DataFrame({"page": ["=x", "b\nc"], "n": [1, 2]},
                                                      index=[5, 6]))
    assert (tmp_path / "a.csv").read_bytes() == b"page,n\r\n'=x,1\r\n\"b\nc\",2\r\n"


def test_fsync_ignores_what_cannot_be_synced_and_raises_real_disk_errors(tmp_path,
                                                                         monkeypatch):
    (tmp_path / "a").write_text("x")
    closed = []
    real_close = os.close
    monkeypatch.setattr(os, "close", lambda fd: closed.append(fd) or real_close(fd))
    for ignored in (errno.EINVAL, errno.EBADF):
        monkeypatch.setattr(os, "fsync", _raiser(OSError(ignored, "not here")))
        storage._fsync(tmp_path / "a", os.O_RDONLY)
    monkeypatch.setattr(os, "fsync", _raiser(OSError(errno.EIO, "disk failed")))
    with pytest.raises(OSError) as raised:
        storage._fsync(tmp_path / "a", os.O_RDONLY)
    assert raised.value.errno == errno.EIO
    assert len(closed) == 3  # the descriptor is closed whatever happened
    monkeypatch.setattr(os, "open", _raiser(PermissionError("folder")))
    storage._fsync(tmp_path, os.O_RDONLY)  # a folder that refuses to be opened is left


def _raiser(error):
    def raise_it(*args, **kwargs):
        raise error
    return raise_it


# complete pictures -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "trailer", "complete"), [
    (b"\xff\xd8 picture \xff\xd9", JPEG_END, True),
    (b"\xff\xd9", JPEG_END, True),              # exactly the trailer
    (b"\xff\xd8 picture \xff", JPEG_END, False),  # cut short
    (b"\xd9", JPEG_END, False),                 # shorter than the trailer
    (b"", JPEG_END, False),
    (b"\x89PNG ..." + PNG_END, PNG_END, True),
    (b"\x89PNG ..." + PNG_END[:-1], PNG_END, False),
    (b"\x89PNG ..." + PNG_END + b"\x00", PNG_END, False),
])
def test_ends_complete_knows_a_whole_picture_by_its_last_bytes(tmp_path, data, trailer,
                                                               complete):
    (tmp_path / "p").write_bytes(data)
    assert ends_complete(tmp_path / "p", trailer) is complete
    assert ends_complete(str(tmp_path / "p"), trailer) is complete


def test_ends_complete_is_false_for_a_missing_file_or_a_folder(tmp_path):
    assert ends_complete(tmp_path / "missing.jpg", JPEG_END) is False
    assert ends_complete(tmp_path, JPEG_END) is False
    assert PNG_END == b"IEND\xaeB`\x82" and JPEG_END == b"\xff\xd9"


# the folder lock -------------------------------------------------------------------------------

def test_the_lock_names_its_holder_and_is_created_beside_itself(tmp_path, monkeypatch):
    linked = []
    real_link = os.link
    monkeypatch.setattr(os, "link", lambda src, dst: linked.append(src) or real_link(src, dst))
    with folder_lock(tmp_path / "out") as lock:
        assert lock == tmp_path / "out" / ".tables.lock"
        assert json.loads(lock.read_text()) == {"pid": os.getpid(),
                                                "host": socket.gethostname()}
        assert _leftovers(tmp_path / "out", {".tables.lock"}) == []
    temporary = linked[0]
    assert os.path.dirname(temporary) == str(tmp_path / "out")  # a hard link stays on one disk
    name = os.path.basename(temporary)
    assert name.startswith(".tables.lock.") and name.endswith(".part")
    assert not (tmp_path / "out" / ".tables.lock").exists()
    with folder_lock(tmp_path / "out", name="other.lock") as lock:
        assert lock.name == "other.lock"


def test_a_full_disk_while_writing_the_lock_fails_and_blocks_no_later_run(tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(os, "write", _raiser(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError) as raised:
        with folder_lock(tmp_path):
            pass
    assert raised.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    with folder_lock(tmp_path):
        pass


def test_a_lock_written_in_pieces_is_whole(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:3]))
    with folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_process_alive():
    assert storage._process_alive(os.getpid()) is True
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert storage._process_alive(int(dead.stdout)) is False


def test_a_process_of_another_user_counts_as_alive(monkeypatch):
    monkeypatch.setattr(os, "kill", _raiser(PermissionError("not yours")))
    assert storage._process_alive(12345) is True


@pytest.mark.parametrize(("text", "holder"), [
    ('{"pid": 12, "host": "h"}', {"pid": 12, "host": "h"}),
    ('{"pid": "12", "host": "h"}', None),   # a pid that is no number
    ('{"host": "h"}', None),
    ("[12]", None),                          # not an object
    ('{"pid": 1', None),                     # cut short (a full disk, in older versions)
    ("", None),
])
def test_read_holder(tmp_path, text, holder):
    (tmp_path / "lock").write_text(text)
    assert storage._read_holder(tmp_path / "lock") == holder


def test_read_holder_of_a_missing_lock_is_none(tmp_path):
    assert storage._read_holder(tmp_path / "lock") is None


def test_an_unreadable_lock_is_stale_only_after_the_grace_time(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text('{"pid": 1')
    host = socket.gethostname()
    now = time.time()
    os.utime(lock, (now - UNREADABLE_LOCK_GRACE_S / 2, now - UNREADABLE_LOCK_GRACE_S / 2))
    assert storage._stale(lock, None, host) is False
    os.utime(lock, (now - 2 * UNREADABLE_LOCK_GRACE_S, now - 2 * UNREADABLE_LOCK_GRACE_S))
    assert storage._stale(lock, None, host) is True
    assert storage._stale(tmp_path / "gone", None, host) is True  # removed meanwhile
    assert UNREADABLE_LOCK_GRACE_S == 10.0


def test_a_lock_of_a_live_process_or_another_host_is_not_stale(tmp_path):
    lock = tmp_path / "lock"
    lock.write_text("{}")
    host = socket.gethostname()
    assert storage._stale(lock, {"pid": os.getpid(), "host": host}, host) is False
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    assert storage._stale(lock, {"pid": int(dead.stdout), "host": host}, host) is True
    assert storage._stale(lock, {"pid": int(dead.stdout), "host": "elsewhere"}, host) is False


def test_a_young_unreadable_lock_refuses_the_run_and_an_old_one_is_taken_over(tmp_path):
    lock = tmp_path / ".tables.lock"
    lock.write_text("")
    with pytest.raises(FolderLocked, match="in use by another run; wait for it to finish "
                                           rf"\(or delete {lock} if that run is gone\)"):
        with folder_lock(tmp_path):
            pass
    assert lock.read_text() == ""
    old = time.time() - 2 * UNREADABLE_LOCK_GRACE_S
    os.utime(lock, (old, old))
    with folder_lock(tmp_path):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    lock = tmp_path / ".tables.lock"
    lock.write_text(json.dumps({"pid": 99999999, "host": "elsewhere"}))
    with pytest.raises(FolderLocked, match=f"^{tmp_path} is in use by process 99999999 on "
                                           "elsewhere; wait"):
        with folder_lock(tmp_path):
            pass
    assert json.loads(lock.read_text())["host"] == "elsewhere"


def test_atomic_path_replaces_the_target_only_on_success(tmp_path):
    target = tmp_path / "new" / "a.bin"
    with atomic_path(str(target)) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".a.bin.")
        assert tmp.name.endswith(".part") and tmp.exists()
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    assert _leftovers(target.parent, {"a.bin"}) == []
