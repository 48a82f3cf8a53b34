"""Corpus listing, atomic writes, the results-folder lock and the executors."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from corpus_tools import execution
from corpus_tools.execution import LocalExecutor, ProcessExecutor, make_executor
from corpus_tools.ingest import file_sha256, safe_name
from corpus_tools.page_sources import list_folder
from corpus_tools.storage import FolderLocked, atomic_path, folder_lock, save_npz_atomic


def test_list_pages_ids_symlinks_and_hidden_files(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "book a").mkdir(parents=True)
    (corpus / "book a" / "p1.JPG").write_bytes(b"x")
    (corpus / "p2.png").write_bytes(b"y")
    (corpus / "notes.txt").write_text("not a page")
    (corpus / ".hidden").mkdir()
    (corpus / ".hidden" / "p3.jpg").write_bytes(b"z")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(b"o")
    os.symlink(outside, corpus / "escape.jpg")
    os.symlink(corpus / "p2.png", corpus / "inside.png")
    pages, rejected = list_folder(corpus)
    assert [p.page_id for p in pages] == ["book a/p1.JPG", "inside.png", "p2.png"]
    assert [(r.page_id, r.status) for r in rejected] == [
        ("escape.jpg", "skipped: symbolic link out of the corpus folder"),
        ("notes.txt", "ignored: not a page image (.txt); pages are .jpg .jpeg .png .tif .tiff "
                      ".jp2 .j2k .jpx .webp .gif .bmp .pdf"),
    ]
    with pytest.raises(NotADirectoryError):
        list_folder(tmp_path / "missing")


def test_hash_and_safe_names(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert safe_name("1594_beyer_p101.jpg") == "1594_beyer_p101.jpg"
    assert safe_name("book a/p1 <x>.jpg").startswith("book_a_p1_x_.jpg~")
    assert safe_name("Sphæra.jpg").startswith("Sph_ra.jpg~")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "data.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    save_npz_atomic(tmp_path / "a.npz", x=np.arange(3))
    with np.load(tmp_path / "a.npz", allow_pickle=False) as data:
        assert data["x"].tolist() == [0, 1, 2]


def test_second_run_into_a_folder_is_refused_and_stale_locks_are_taken_over(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(FolderLocked, match="in use by process"):
            with folder_lock(tmp_path):
                pass
    assert not (tmp_path / ".tables.lock").exists()
    # a lock left by a process that died
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (tmp_path / ".tables.lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    )
    with folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def _square(x):
    return x * x


def test_local_executor_and_argument_checks():
    executor = make_executor()
    assert isinstance(executor, LocalExecutor)
    assert dict(executor.imap_unordered(_square, range(5))) == {i: i * i for i in range(5)}
    with pytest.raises(ValueError):
        make_executor(workers=0)


def test_one_worker_runs_here_and_more_run_in_processes_with_a_share_of_the_cores(
        monkeypatch):
    assert isinstance(make_executor(workers=1), LocalExecutor)
    monkeypatch.setattr(execution, "usable_cores", lambda: 8)
    executor = make_executor(workers=3)
    try:
        assert isinstance(executor, ProcessExecutor)
        assert executor.description == "3 processes on this machine, 2 threads each"
    finally:
        executor.close()


def test_process_executor_runs_every_task_in_other_processes():
    executor = make_executor(workers=2)
    try:
        results = dict(executor.imap_unordered(_process_and_square, range(20)))
    finally:
        executor.close()
    assert {item: square for item, (_, square) in results.items()} == {i: i * i for i in range(20)}
    assert os.getpid() not in {pid for pid, _ in results.values()}
    assert "2 processes" in executor.description


def _process_and_square(x):
    return os.getpid(), x * x


def test_a_worker_process_that_dies_stops_the_run_with_what_to_do():
    executor = make_executor(workers=2)
    try:
        with pytest.raises(RuntimeError, match="a worker process died .* fewer --workers"):
            list(executor.imap_unordered(_die, range(4)))
    finally:
        executor.close()


def _die(_):
    os._exit(3)


@pytest.mark.slow
def test_dask_executor_gives_the_same_results():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        executor = make_executor(scheduler=cluster.scheduler_address, workers=5)
        try:
            results = dict(executor.imap_unordered(_square, range(20)))
        finally:
            executor.close()
    assert results == {i: i * i for i in range(20)}
