"""The per-page task of a corpus run (sphaera_tables.page_task), on one small crop of the real
1604 table: the cache key as documented, reuse of whole cache files only, thumbnails, skipped
pages and the loader of a finished run. Fast: one page analysis per test module."""

import hashlib
import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from corpus_tools.page_sources import PageSource
from corpus_tools.results_folder import ResultsFolder
from digit_detector.weights import DEFAULT_WEIGHTS
from sphaera_tables import page_task
from sphaera_tables.page_analysis import FeatureConfig, analyse_page
from sphaera_tables.page_task import (
    ANALYSIS_MODULES,
    PageTask,
    analysis_code_fingerprint,
    cache_file,
    cache_key,
    cached_analysis_loader,
    code_fingerprint,
    load_analysis,
    run_page_task,
    write_thumbnail,
)

REAL_PAGE = (Path(__file__).parents[2] / "shared" / "data" / "real" / "tables"
             / "1921_pifferi_sfera_1604_p368.jpg")
JPEG_END = b"\xff\xd9"


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """A 160 x 240 px crop of the real table (a few rows of numbers)."""
    grey = np.asarray(Image.open(REAL_PAGE).convert("L"))[400:560, 200:440]
    path = tmp_path_factory.mktemp("page_task") / "crop.png"
    Image.fromarray(grey).save(path)
    return path


def _task(page: Path, out: Path, features=None, detector_file=None) -> PageTask:
    features = features or FeatureConfig()
    key = cache_key("c" * 64, "m" * 64, features)
    return PageTask(page_id=page.name, source=PageSource(page.name, str(page)),
                    cache_file=str(cache_file(out, key)),
                    thumbnail_file=str(ResultsFolder(out).thumbnail(page.name)),
                    detector_file=detector_file, features=features)


@pytest.fixture(scope="module")
def done(page, tmp_path_factory):
    """A task run once: (task, outcome, cache bytes, thumbnail bytes)."""
    task = _task(page, tmp_path_factory.mktemp("page_task") / "out")
    outcome = run_page_task(task)
    return task, outcome, Path(task.cache_file).read_bytes(), \
        Path(task.thumbnail_file).read_bytes()


# the cache key and the code fingerprint ----------------------------------------------------

def test_cache_key_is_the_sha256_of_the_documented_json():
    features = FeatureConfig(threshold=0.3)
    blob = json.dumps({"code": analysis_code_fingerprint(), "content": "a" * 64,
                       "model": "b" * 64, "features": features.to_dict()}, sort_keys=True)
    assert cache_key("a" * 64, "b" * 64, features) == hashlib.sha256(blob.encode()).hexdigest()


def test_cache_key_tells_every_input_apart(monkeypatch):
    key = cache_key("a" * 64, "b" * 64, FeatureConfig())
    others = {cache_key("b" * 64, "a" * 64, FeatureConfig()),  # content and model swapped
              cache_key("a" * 64, "c" * 64, FeatureConfig()),
              cache_key("c" * 64, "b" * 64, FeatureConfig()),
              cache_key("a" * 64, "b" * 64, FeatureConfig(threshold=0.3))}
    monkeypatch.setattr(page_task, "analysis_code_fingerprint", lambda: "f" * 64)
    others.add(cache_key("a" * 64, "b" * 64, FeatureConfig()))
    assert len(others) == 5 and key not in others


def test_code_fingerprint_is_the_sha256_of_the_modules_source_in_order():
    digest = hashlib.sha256()
    for name in ANALYSIS_MODULES:
        digest.update(Path(importlib.util.find_spec(name).origin).read_bytes())
    assert analysis_code_fingerprint() == digest.hexdigest()
    assert code_fingerprint(ANALYSIS_MODULES) == digest.hexdigest()
    one = hashlib.sha256(Path(page_task.__file__).read_bytes()).hexdigest()
    assert code_fingerprint(("sphaera_tables.page_task",)) == one


def test_every_step_of_a_page_analysis_is_in_the_fingerprint():
    """A change to any code that computes what the cache holds redoes the pages."""
    from digit_detector import DigitDetector, detect, prepare_page
    from digit_detector.forward import detector_maps
    from digit_detector.reading import next_digits
    from digit_detector.words import digits_in_words
    from sphaera_tables.bigram import BigramHead
    from sphaera_tables.explain import pool
    from sphaera_tables.numbers import group_numbers
    from sphaera_tables.page_analysis import analyse_page

    steps = (DigitDetector, detector_maps, detect, prepare_page, next_digits, digits_in_words,
             BigramHead, pool, group_numbers, analyse_page)
    assert {step.__module__ for step in steps} <= set(ANALYSIS_MODULES)


def test_cache_file_lies_in_a_folder_named_by_the_keys_first_two_characters(tmp_path):
    key = "ab" + "0" * 62
    assert cache_file(tmp_path, key) == tmp_path / "cache" / "ab" / f"{key}.npz"
    assert cache_file(str(tmp_path), key) == tmp_path / "cache" / "ab" / f"{key}.npz"


# running a task --------------------------------------------------------------------------------

def test_a_task_analyses_the_page_and_writes_its_cache_and_thumbnail(page, done):
    task, outcome, _, _ = done
    assert (outcome.page_id, outcome.status, outcome.reused) == (page.name, "ok", False)
    assert outcome.seconds > 0
    cached = load_analysis(task.cache_file)
    from sphaera_tables.page_task import _detector

    fresh = analyse_page(np.asarray(Image.open(page)), _detector(None), FeatureConfig())
    np.testing.assert_array_equal(cached.phi, fresh.phi)
    assert cached.phi.sum() > 0  # the crop has digit pairs: equality means something
    np.testing.assert_array_equal(cached.factors, fresh.factors)
    assert (cached.page_shape, cached.scale, cached.rotation) == (
        fresh.page_shape, fresh.scale, fresh.rotation)
    thumbnail = cv2.imread(task.thumbnail_file, cv2.IMREAD_UNCHANGED)
    assert thumbnail.shape == (160, 240)  # smaller than 800 px: kept at its size
    assert not list(Path(task.cache_file).parent.glob("*.part"))


def test_a_finished_task_is_reused_without_reading_the_page(page, done, tmp_path, monkeypatch):
    task, _, cache_bytes, thumbnail_bytes = done

    def no_loading(self):
        raise AssertionError("a reused page must not be read again")

    monkeypatch.setattr(PageSource, "load", no_loading)
    again = run_page_task(task)
    assert (again.page_id, again.status, again.reused, again.seconds) == (
        page.name, "ok", True, 0.0)
    assert Path(task.cache_file).read_bytes() == cache_bytes
    assert Path(task.thumbnail_file).read_bytes() == thumbnail_bytes


@pytest.mark.parametrize("damage", ["cache missing", "cache truncated", "cache not a zip",
                                    "cache lacks an array", "thumbnail missing",
                                    "thumbnail truncated"])
def test_a_damaged_or_missing_output_is_redone(page, done, tmp_path, damage):
    _, _, cache_bytes, thumbnail_bytes = done
    task = _task(page, tmp_path / "out")
    Path(task.cache_file).parent.mkdir(parents=True)
    Path(task.thumbnail_file).parent.mkdir(parents=True)
    Path(task.cache_file).write_bytes(cache_bytes)
    Path(task.thumbnail_file).write_bytes(thumbnail_bytes)
    if damage == "cache missing":
        Path(task.cache_file).unlink()
    elif damage == "cache truncated":
        Path(task.cache_file).write_bytes(cache_bytes[: len(cache_bytes) // 2])
    elif damage == "cache not a zip":
        Path(task.cache_file).write_bytes(b"not an npz file at all")
    elif damage == "cache lacks an array":
        with np.load(task.cache_file) as arrays:
            kept = {name: arrays[name] for name in arrays.files if name != "digit_size"}
        with open(task.cache_file, "wb") as handle:
            np.savez(handle, **kept)
    elif damage == "thumbnail missing":
        Path(task.thumbnail_file).unlink()
    else:
        Path(task.thumbnail_file).write_bytes(thumbnail_bytes[:-2])
    outcome = run_page_task(task)
    assert (outcome.status, outcome.reused) == ("ok", False), damage
    assert Path(task.cache_file).read_bytes() == cache_bytes
    assert Path(task.thumbnail_file).read_bytes() == thumbnail_bytes


def test_a_pickled_cache_file_is_never_loaded(page, done, tmp_path):
    task = _task(page, tmp_path / "out")
    Path(task.cache_file).parent.mkdir(parents=True)
    with np.load(done[0].cache_file) as arrays:
        pickled = {name: arrays[name] for name in arrays.files}
    pickled["phi"] = np.array([{"pickled": True}], dtype=object)
    with open(task.cache_file, "wb") as handle:
        np.savez(handle, **pickled)
    with pytest.raises(ValueError, match="pickle"):
        load_analysis(task.cache_file)
    Path(task.thumbnail_file).parent.mkdir(parents=True)
    Path(task.thumbnail_file).write_bytes(done[3])
    assert run_page_task(task).reused is False


def test_an_unreadable_page_is_skipped_with_its_reason_and_nothing_written(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    task = _task(broken, tmp_path / "out")
    before = time.perf_counter()
    outcome = run_page_task(task)
    assert 0 <= outcome.seconds <= time.perf_counter() - before  # the time it took
    assert (outcome.page_id, outcome.reused) == ("broken.jpg", False)
    assert outcome.status == "skipped: not a readable image (UnidentifiedImageError)"
    assert not Path(task.cache_file).exists() and not Path(task.thumbnail_file).exists()


def test_the_detector_file_of_the_task_is_the_one_used(page, tmp_path, monkeypatch):
    used = []
    real = page_task.load_detector
    monkeypatch.setattr(page_task, "load_detector", lambda path: used.append(path) or real(path))
    page_task._detector.cache_clear()
    run_page_task(_task(page, tmp_path / "out", detector_file=str(DEFAULT_WEIGHTS)))
    assert used == [str(DEFAULT_WEIGHTS)]
    page_task._detector.cache_clear()


def test_freed_memory_is_handed_back_after_a_page_once_the_process_holds_much(
        page, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(page_task, "_malloc_trim", lambda: calls.append)
    resident = page_task._resident_bytes()
    assert 50 << 20 < resident < 64 << 30  # this process, read from /proc
    monkeypatch.setattr(page_task, "TRIM_ABOVE_BYTES", resident + (8 << 30))
    before = time.perf_counter()
    outcome = run_page_task(_task(page, tmp_path / "out"))
    assert 0 < outcome.seconds <= time.perf_counter() - before  # the time the analysis took
    assert calls == []  # well under the limit: the memory is kept for the next page
    monkeypatch.setattr(page_task, "TRIM_ABOVE_BYTES", 1 << 20)
    run_page_task(_task(page, tmp_path / "again"))
    assert calls == [0]
    monkeypatch.setattr(page_task, "_malloc_trim", lambda: None)
    run_page_task(_task(page, tmp_path / "other"))  # no allocator to trim: nothing to call


def test_malloc_trim_is_glibcs_on_linux():
    page_task._malloc_trim.cache_clear()
    trim = page_task._malloc_trim()
    assert trim is not None and trim.__name__ == "malloc_trim"
    assert page_task._malloc_trim() is trim  # looked up once


# thumbnails ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "expected"), [((1000, 400), (800, 320)),
                                                 ((400, 1600), (200, 800)),
                                                 ((800, 300), (800, 300)),
                                                 ((50, 30), (50, 30)),
                                                 ((3000, 2), (800, 1)),
                                                 ((1, 3000), (1, 800))])
def test_thumbnail_keeps_the_longest_side_at_most_800_px(tmp_path, shape, expected):
    if max(shape) > 800:  # one-pixel stripes: area averaging keeps them as grey, where
        grey = np.zeros(shape, np.uint8)  # sampling (bilinear, nearest) would alias them
        grey[:, ::2] = 255
    else:
        grey = np.tile(np.linspace(0, 255, shape[1]).astype(np.uint8), (shape[0], 1))
    target = tmp_path / "thumbs" / "t.jpg"
    write_thumbnail(grey, target)
    data = target.read_bytes()
    assert data.endswith(JPEG_END)
    small = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert small.shape == expected
    reference = cv2.resize(grey, expected[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - reference).mean() < 3  # JPEG quality 85 of the same


def test_thumbnail_side_can_be_chosen_and_an_unencodable_page_is_an_error(tmp_path,
                                                                          monkeypatch):
    grey = np.zeros((300, 200), np.uint8)
    write_thumbnail(grey, tmp_path / "t.jpg", side=100)
    assert cv2.imread(str(tmp_path / "t.jpg"), cv2.IMREAD_UNCHANGED).shape == (100, 67)
    monkeypatch.setattr(cv2, "imencode", lambda *args: (False, None))
    with pytest.raises(OSError, match="could not encode a thumbnail for"):
        write_thumbnail(grey, tmp_path / "u.jpg")
    assert not (tmp_path / "u.jpg").exists()


# the loader of a finished run -------------------------------------------------------------------

def test_cached_analysis_loader_finds_each_page_by_the_manifests_hashes(page, done, tmp_path):
    _, _, cache_bytes, _ = done
    features = FeatureConfig(shift_factors=(1.0, 2.0))
    settings = json.loads(json.dumps(features.to_dict()))  # tuples come back as lists
    manifest = {"inputs": {"crop.png": "d" * 64}, "model_hash": "e" * 64,
                "config": {"features": settings}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    target = cache_file(tmp_path, cache_key("d" * 64, "e" * 64, features))
    target.parent.mkdir(parents=True)
    target.write_bytes(cache_bytes)
    loaded = cached_analysis_loader(tmp_path)("crop.png")
    np.testing.assert_array_equal(loaded.phi, load_analysis(done[0].cache_file).phi)
    with pytest.raises(KeyError):
        cached_analysis_loader(tmp_path)("other.png")
