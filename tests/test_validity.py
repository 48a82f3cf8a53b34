"""Validity by content: what a results folder holds was made by what the last run used.

A run that was changed (pages added, another detector, other ``--links``) and rerun into the
same folder ends with the same files, byte for byte, as a fresh run with the final settings;
damaged pictures and explanations are redone instead of stopping the run; the lock survives a
full disk; networks are written atomically.
"""

import dataclasses
import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from real_crops import write_real_crops

import corpus_tools.networks.exports as exports
import corpus_tools.storage as storage
from corpus_tools.networks import write_networks
from corpus_tools.results_folder import ResultsFolder
from corpus_tools.storage import FolderLocked, folder_lock
from digit_detector.weights import load_detector, save_detector
from sphaera_tables.similarity import SimilarityOptions, run_similarity

OPTIONS = SimilarityOptions(min_score=0.0, top_k=2, links=20, workers=1)
NOT_COMPARED = {"cache", ".tables.lock"}
"""The page cache keeps every analysis made (keyed by content); the lock is the run's."""


def _outputs(out: Path) -> dict[str, bytes]:
    """Every file of a results folder that a rerun must write as a fresh run does; the
    manifest without its timings."""
    files = {}
    for path in sorted(out.rglob("*")):
        relative = path.relative_to(out)
        if path.is_file() and relative.parts[0] not in NOT_COMPARED:
            files[relative.as_posix()] = path.read_bytes()
    manifest = json.loads(files.pop("manifest.json"))
    manifest.pop("timings")
    files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    return files


def _assert_same_as_fresh(corpus: Path, out: Path, options, fresh: Path) -> None:
    run_similarity(corpus, fresh, options)
    changed, expected = _outputs(out), _outputs(fresh)
    assert sorted(changed) == sorted(expected)
    different = [name for name in expected if changed[name] != expected[name]]
    assert not different


def _other_detector(path: Path) -> str:
    detector = load_detector()
    with torch.no_grad():
        detector.layers[0].weight.mul_(1.01)
    return str(save_detector(detector, path))


@pytest.mark.slow  # 18 s
def test_other_links_then_rerun_equals_a_fresh_run(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    run_similarity(corpus, out, OPTIONS)
    rerun = dataclasses.replace(OPTIONS, links=3)
    summary = run_similarity(corpus, out, rerun)
    assert summary.pages_reused == 3 and summary.explanations_written == summary.matches
    _assert_same_as_fresh(corpus, out, rerun, tmp_path / "fresh")


@pytest.mark.slow  # 20 s
def test_pages_added_then_rerun_equals_a_fresh_run(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    run_similarity(corpus, out, OPTIONS)
    write_real_crops(corpus, 4)
    summary = run_similarity(corpus, out, OPTIONS)
    assert summary.pages_reused == 3
    _assert_same_as_fresh(corpus, out, OPTIONS, tmp_path / "fresh")


@pytest.mark.slow  # 20 s; a fast check of the same promise: test_escaped_bugs
def test_other_detector_then_rerun_equals_a_fresh_run(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    run_similarity(corpus, out, OPTIONS)
    rerun = dataclasses.replace(OPTIONS, detector_file=_other_detector(tmp_path / "d.safetensors"))
    assert run_similarity(corpus, out, rerun).pages_reused == 0
    _assert_same_as_fresh(corpus, out, rerun, tmp_path / "fresh")


def test_an_explanation_records_what_made_it(tmp_path):
    corpus = write_real_crops(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    run_similarity(corpus, out, OPTIONS)
    records = [json.loads(path.read_text()) for path in (out / "explanations").glob("*.json")]
    assert records and all(len(record["producer"]) == 64 for record in records)
    assert len({record["producer"] for record in records}) == len(records)


@pytest.mark.slow  # 2 x 15 s
@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_damaged_pictures_and_explanations_are_redone_not_fatal(tmp_path, damage):
    corpus = write_real_crops(tmp_path / "corpus", 3)
    out = tmp_path / "out"
    run_similarity(corpus, out, OPTIONS)
    expected = _outputs(out)
    folder = ResultsFolder(out)
    damaged = [folder.thumbnail("crop0.png"), *sorted((out / "explanations").glob("*"))[:2]]
    for path in damaged:
        data = path.read_bytes()
        path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    summary = run_similarity(corpus, out, OPTIONS)
    assert summary.pages_reused == 2
    assert summary.explanations_written >= 1
    assert _outputs(out) == expected


def test_a_full_disk_while_taking_the_lock_blocks_no_later_run(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        with folder_lock(out):
            pass
    monkeypatch.undo()
    assert [path.name for path in out.iterdir()] == []
    with folder_lock(out) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_an_empty_lock_left_by_a_full_disk_is_taken_over_when_old(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    lock = out / ".tables.lock"
    lock.write_bytes(b"")
    with pytest.raises(FolderLocked):  # it may be a lock being written right now
        with folder_lock(out):
            pass
    old = lock.stat().st_mtime - 2 * storage.UNREADABLE_LOCK_GRACE_S
    os.utime(lock, (old, old))
    with folder_lock(out):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()


def test_a_network_write_stopped_by_a_full_disk_keeps_the_old_file(review_results,
                                                                   monkeypatch):
    write_networks(review_results)
    networks = review_results / "networks"
    before = {path.name: path.read_bytes() for path in networks.iterdir()}

    def half_then_full(graph, path, description=""):
        Path(path).write_bytes(b"<?xml version=")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(exports, "write_gexf", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_networks(review_results)
    assert {path.name: path.read_bytes() for path in networks.iterdir()} == before


def test_atomic_files_reach_the_disk_before_the_rename(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(storage.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    storage.write_text_atomic(tmp_path / "a.txt", "x")
    assert len(synced) >= 1
    assert (tmp_path / "a.txt").read_text() == "x"


@pytest.mark.slow
def test_changed_synthetic_run_equals_a_fresh_run(tmp_path):
    """Eight synthetic pages, then two more pages, another detector and other links at once."""
    from corpus_tools.synth import generate_corpus

    generated = generate_corpus(tmp_path / "generated", pages=10, seed=7, dpi_range=(150, 160))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    pages = sorted(path for path in generated.iterdir() if path.suffix == ".jpg")
    for path in pages[:8]:
        shutil.copy(path, corpus / path.name)
    out = tmp_path / "out"
    first = dataclasses.replace(OPTIONS, top_k=3)
    run_similarity(corpus, out, first)
    for path in pages[8:]:
        shutil.copy(path, corpus / path.name)
    final = dataclasses.replace(first, links=5,
                                detector_file=_other_detector(tmp_path / "d.safetensors"))
    run_similarity(corpus, out, final)
    _assert_same_as_fresh(corpus, out, final, tmp_path / "fresh")
