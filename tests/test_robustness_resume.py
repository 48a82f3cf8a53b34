"""A corpus run survives crashes: kill -9 and rerun, crashed writes, damaged cache, held lock.

An interrupted run must never leave a half-written file that a later run takes as done, and the
rerun must reuse finished pages and end with exactly the outputs of an uninterrupted run.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from real_crops import write_real_crops

from corpus_tools.storage import FolderLocked, folder_lock
from sphaera_tables.cli import main
from sphaera_tables.page_task import load_analysis
from sphaera_tables.similarity import SimilarityOptions, run_similarity

FAST = SimilarityOptions(min_score=0.0, explain=False, report=False, networks=False)
OUTPUTS = ("features.npy", "matches.csv", "pages.csv")


def _assert_same_outputs(out: Path, reference: Path) -> None:
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def _cache_files(out: Path) -> list[Path]:
    return sorted((out / "cache").glob("*/*.npz"))


def test_second_run_into_a_held_folder_is_refused(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus")
    out = tmp_path / "out"
    with folder_lock(out):
        with pytest.raises(FolderLocked, match=f"in use by process {os.getpid()}"):
            run_similarity(corpus, out, FAST)
        result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(out), "--quiet"])
    assert result.exit_code == 1
    assert f"in use by process {os.getpid()}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (out / "pages.csv").exists() and not (out / "cache").exists()


def test_a_crash_while_writing_a_page_leaves_nothing_taken_as_done(tmp_path, monkeypatch):
    corpus = write_real_crops(tmp_path / "corpus")
    reference = tmp_path / "reference"
    run_similarity(corpus, reference, FAST)
    out = tmp_path / "out"
    real_savez = np.savez
    calls = []

    def savez_then_crash(handle, **arrays):
        calls.append(1)
        if len(calls) == 2:  # the second page: half its bytes reach the disk, then the crash
            real_savez(handle, **arrays)
            handle.truncate(handle.tell() // 2)
            raise KeyboardInterrupt
        real_savez(handle, **arrays)

    monkeypatch.setattr(np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run_similarity(corpus, out, FAST)
    monkeypatch.setattr(np, "savez", real_savez)
    assert len(_cache_files(out)) == 1
    assert not list((out / "cache").rglob("*.part")), "temporary file left behind"
    assert not (out / ".tables.lock").exists()
    summary = run_similarity(corpus, out, FAST)
    assert (summary.pages_ok, summary.pages_reused) == (3, 1)
    _assert_same_outputs(out, reference)


def test_a_damaged_cache_file_is_redone_not_trusted(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus")
    out = tmp_path / "out"
    run_similarity(corpus, out, FAST)
    reference = tmp_path / "reference"
    for name in OUTPUTS:
        (reference / name).parent.mkdir(exist_ok=True)
        (reference / name).write_bytes((out / name).read_bytes())
    damaged = _cache_files(out)[0]
    damaged.write_bytes(damaged.read_bytes()[:100])
    summary = run_similarity(corpus, out, FAST)
    assert summary.pages_ok == 3 and summary.pages_reused == 2
    load_analysis(damaged)
    _assert_same_outputs(out, reference)


def _similarity_command(corpus: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sphaera_tables", "similarity", str(corpus), "-o", str(out),
            "--no-explanations", "--no-report", "--quiet"]


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_resumes_and_equals_an_uninterrupted_run(tmp_path):
    from corpus_tools.synth import generate_corpus

    pages = 8
    corpus = generate_corpus(tmp_path / "corpus", pages=pages, seed=11, dpi_range=(150, 200))
    out = tmp_path / "out"
    run = subprocess.Popen(_similarity_command(corpus, out), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_cache_files(out)) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    cached = _cache_files(out)
    assert 2 <= len(cached) < pages
    for path in cached:  # whatever is there under a final name is complete
        load_analysis(path)
    assert not (out / "pages.csv").exists()
    assert (out / ".tables.lock").exists()  # left by the dead run; the rerun takes it over

    rerun = subprocess.run(_similarity_command(corpus, out), capture_output=True, text=True,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    reused = int(re.search(r"\((\d+) reused", rerun.stdout).group(1))
    assert len(cached) <= reused < pages
    assert f"Pages analysed: {pages} " in rerun.stdout

    reference = tmp_path / "reference"
    clean = subprocess.run(_similarity_command(corpus, reference), capture_output=True,
                           text=True, timeout=600)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "(0 reused" in clean.stdout
    _assert_same_outputs(out, reference)
    assert np.load(out / "features.npy").shape == (pages, 100)


@pytest.mark.slow
def test_ctrl_c_stops_a_run_in_worker_processes_and_the_rerun_resumes(tmp_path):
    from corpus_tools.synth import generate_corpus

    pages = 12
    corpus = generate_corpus(tmp_path / "corpus", pages=pages, seed=11, dpi_range=(150, 200))
    out = tmp_path / "out"
    command = [*_similarity_command(corpus, out), "--workers", "2"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True,  # its own process group, as in a terminal
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while len(_cache_files(out)) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C reaches the driver and its workers
    done_then = len(_cache_files(out))
    output, _ = run.communicate(timeout=120)
    assert run.returncode != 0 and "Aborted" in output and "Traceback" not in output, output
    cached = _cache_files(out)
    # the pages in hand (two workers, three queued calls) are finished, the rest are not started
    assert 2 <= done_then <= len(cached) <= done_then + 5 < pages
    for path in cached:
        load_analysis(path)

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert int(re.search(r"\((\d+) reused", rerun.stdout).group(1)) >= len(cached)
    reference = tmp_path / "reference"
    run_similarity(corpus, reference, FAST)  # one process, from scratch
    for name in ("features.npy", "pages.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_page_task_never_reads_a_leftover_temporary_file(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus")
    out = tmp_path / "out"
    run_similarity(corpus, out, FAST)
    first = _cache_files(out)[0]
    leftover = first.with_name(f".{first.name}.abc123.part")  # as a kill mid-write leaves it
    leftover.write_bytes(b"half")
    first.unlink()
    summary = run_similarity(corpus, out, FAST)
    assert summary.pages_reused == 2
    load_analysis(first)
