"""The options of the `tables` commands do what their help says, checked against the library
or an independent computation: similarity --top-k/--min-score/--min-share/--links/
--report-matches/--json/--workers, detect --threshold, train-detector --patience/--validation/--fully-labelled, and a
small `tables demo`."""

import json
import re
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image
from real_crops import write_real_crops
from test_detector_fixtures import render_table

from corpus_tools.storage import load_sparse
from sphaera_tables.cli import main
from sphaera_tables.similarity import SimilarityOptions, run_similarity


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three crops of the real 1604 table page (different numbers on each)."""
    return write_real_crops(tmp_path_factory.mktemp("cli_options") / "corpus")


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """Every pair listed (top 2 of 2 other pages, no minimum), 30 links an explanation."""
    out = tmp_path_factory.mktemp("cli_options") / "reference"
    run_similarity(corpus, out, SimilarityOptions(min_score=0.0, top_k=2, min_share=0.0,
                                                  links=30, networks=False, report=False))
    return out


def _scores(out: Path) -> tuple[list[str], np.ndarray]:
    """Page ids and every pair's match score: the similarity from the saved features (not
    from the search) times the squared agreement of the pair's collation counts (the reference
    run lists every ordered pair)."""
    ids = pd.read_csv(out / "pages.csv", keep_default_na=False).page_id.tolist()
    features = np.load(out / "features.npy").astype(np.float64)
    cells = load_sparse(out / "cell_features.npz")
    scores = features @ features.T + (cells @ cells.T).toarray()
    row = {page: i for i, page in enumerate(ids)}
    listed = pd.read_csv(out / "matches.csv")
    assert len(listed) == len(ids) * (len(ids) - 1)
    for match in listed.itertuples():
        aligned = match.cells_agree + match.cells_differ
        scores[row[match.page_a], row[match.page_b]] *= \
            (match.cells_agree / aligned if aligned else 1.0) ** 2
    return ids, scores


def _brute_force(ids, scores, k, min_score, min_share=0.0) -> set[tuple[str, str]]:
    found = set()
    for a in range(len(ids)):
        others = sorted((b for b in range(len(ids)) if b != a), key=lambda b: -scores[a, b])
        found |= {(ids[a], ids[b]) for b in others[:k]
                  if scores[a, b] >= min_score and scores[a, b] >= min_share * scores[a, others[0]]}
    return found


@pytest.mark.parametrize(("top_k", "between", "min_share"), [(1, 0, 0.0), (2, 1, 0.0),
                                                             (2, -1, 0.999)],
                         ids=["top-1, above the weakest pair", "top-2, above the middle pair",
                              "top-2, each page's best only"])
def test_similarity_search_and_output_options(corpus, reference, tmp_path, top_k, between,
                                              min_share):
    ids, scores = _scores(reference)
    pair_scores = sorted({round(scores[a, b], 6) for a in range(3) for b in range(a + 1, 3)})
    assert len(pair_scores) == 3  # three pages, three pairs of different scores
    min_score = round((pair_scores[between] + pair_scores[between + 1]) / 2, 6) \
        if between >= 0 else 0.0
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "similarity", str(corpus), "-o", str(out), "--top-k", str(top_k), "--min-score",
        str(min_score), "--min-share", str(min_share), "--links", "2", "--report-matches", "1",
        "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    matches = pd.read_csv(out / "matches.csv")
    expected = _brute_force(ids, scores, top_k, min_score, min_share)
    assert set(zip(matches.page_a, matches.page_b, strict=True)) == expected
    # the option under test made a difference: a wrong one would list other pairs
    if top_k == 1:
        assert expected != _brute_force(ids, scores, 2, min_score)
    elif min_share:
        assert expected != _brute_force(ids, scores, top_k, min_score)
    else:
        assert expected != _brute_force(ids, scores, top_k, 0.0)
    assert (matches["rank"] <= top_k).all() and (matches.score >= min_score).all()
    assert summary["results"] == str(out)
    assert (summary["pages_ok"], summary["pages_skipped"], summary["pages_reused"]) == (3, 0, 0)
    assert summary["matches"] == summary["explanations_written"] == len(matches)
    assert set(summary["timings_s"]) >= {"pages", "explanations", "report"}
    for match in matches.itertuples():  # --links: the strongest two of the reference's
        key = f"{match.page_a}__{match.page_b}.json"
        links = json.loads((out / "explanations" / key).read_text())["links"]
        full = json.loads((reference / "explanations" / key).read_text())["links"]
        assert len(full) > 2 and links == full[:2]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert len(matches) >= 2 and html.count('<article class="match"') == 1  # --report-matches


@pytest.mark.slow
def test_similarity_with_workers_gives_the_outputs_of_a_run_in_one_process(corpus, reference,
                                                                           tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["similarity", str(corpus), "-o", str(out), "--workers",
                                       "2", "--top-k", "2", "--min-score", "0", "--min-share",
                                       "0", "--links", "30",
                                       "--no-report", "--quiet"])
    assert result.exit_code == 0, result.output
    for name in ("features.npy", "cell_features.npz", "similarity.npy", "matches.csv",
                 "pages.csv", "variants.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def test_detect_threshold_keeps_only_the_detections_above_it(tmp_path):
    from digit_detector import detect, load_detector

    grey, _ = render_table(rows=6)
    Image.fromarray(grey).save(tmp_path / "page.png")
    everything = detect(grey, load_detector()).digits
    threshold = float(np.quantile(everything.score, 0.5))  # half the default's detections
    result = CliRunner().invoke(main, ["detect", str(tmp_path / "page.png"), "-o",
                                       str(tmp_path / "out"), "--threshold", f"{threshold:.4f}",
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out" / "page.digits.csv")
    expected = detect(grey, load_detector(), threshold=float(f"{threshold:.4f}")).digits
    assert 0 < len(written) < len(everything)
    assert (written.score >= float(f"{threshold:.4f}") - 0.005).all()  # CSV: 2 decimals
    pd.testing.assert_frame_equal(written[["digit", "x", "y"]],
                                  expected[["digit", "x", "y"]].reset_index(drop=True),
                                  check_dtype=False, atol=0.01)


def test_train_detector_passes_its_options_to_the_training(tmp_path, monkeypatch):
    from digit_detector import load_detector, training

    boxes = tmp_path / "boxes.csv"
    grey, truth = render_table(rows=3)
    Image.fromarray(grey).save(tmp_path / "page.png")
    boxes.write_text("file,x0,y0,x1,y1,digit\n" + "".join(
        f"page.png,{r.x0},{r.y0},{r.x1},{r.y1},{r.digit}\n" for r in truth.itertuples()))
    calls = []

    def spy(boxes, negatives, output, **options):
        calls.append(options)
        summary = types.SimpleNamespace(
            problems=[], stopped_early=True, resumed_after_epoch=0, images=1,
            negative_images=0, train_windows=10, validation_windows=5, epochs_run=3,
            best_validation_loss=0.5, best_epoch=2, output_gain=1.0, seconds=1.0)
        return load_detector(), summary

    monkeypatch.setattr(training, "train_to_file", spy)
    command = ["train-detector", str(boxes), "-o", str(tmp_path / "w.safetensors"), "--quiet"]
    assert CliRunner().invoke(main, command).exit_code == 0
    assert CliRunner().invoke(main, [*command, "--patience", "3", "--validation", "0.4",
                                     "--fully-labelled", "--epochs", "7",
                                     "--steps-per-epoch", "5", "--seed", "9"]).exit_code == 0
    defaults, chosen = calls
    assert (defaults["patience"], defaults["validation_fraction"], defaults["fully_labelled"]) \
        == (10, 0.15, False)
    assert (chosen["patience"], chosen["validation_fraction"], chosen["fully_labelled"],
            chosen["epochs"], chosen["steps_per_epoch"], chosen["seed"]) == (
        3, 0.4, True, 7, 5, 9)
    refused = CliRunner().invoke(main, [*command, "--validation", "0.6"])
    assert refused.exit_code == 2 and "0.6 is not in the range" in refused.output
    refused = CliRunner().invoke(main, [*command, "--patience", "0"])
    assert refused.exit_code == 2 and len(calls) == 2


@pytest.mark.slow
def test_train_detector_stops_after_patience_epochs_without_a_better_validation_loss(tmp_path):
    from corpus_tools.synth import generate_corpus

    corpus = generate_corpus(tmp_path / "corpus", pages=3, seed=4, typefaces="heldout")
    boxes = corpus / "boxes.csv"  # a plain box CSV beside the pages: not labelled in full
    boxes.write_bytes((corpus / "truth" / "digits.csv").read_bytes())
    out = tmp_path / "w.safetensors"
    result = CliRunner().invoke(main, [
        "train-detector", str(boxes), "-o", str(out),
        "--epochs", "6", "--steps-per-epoch", "1", "--patience",
        "1", "--validation", "0.5", "--fully-labelled", "--quiet"])
    assert result.exit_code == 0, result.output
    found = re.search(r"\((\d+) training / (\d+) validation windows\); (\d+) epochs "
                      r"\((early stop|all epochs)[^)]*\), best validation loss \S+ at epoch "
                      r"(\d+)", result.output)
    assert found, result.output
    train, validation, run, stop, best = found.groups()
    assert int(validation) > 0 and int(train) > 0
    if stop == "early stop":
        assert int(run) - int(best) == 1 and int(run) < 6  # --patience 1
    else:
        assert int(run) == 6 and int(best) >= 5


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline_on_a_small_corpus_and_resumes(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", str(folder), "--pages", "10", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Generating a synthetic corpus of 10 pages" in result.output
    pages = pd.read_csv(folder / "results" / "pages.csv")
    assert len(pages) == 10 and set(pages.status) == {"ok"}
    matches = pd.read_csv(folder / "results" / "matches.csv")
    assert f"Candidate matches: {len(matches)}, explanations written: {len(matches)}" in \
        result.output
    assert (folder / "results" / "report.html").is_file()
    assert len(list((folder / "results" / "explanations").glob("*.json"))) == len(matches)
    assert "generic baseline (pixels): mAP" in result.output
    again = CliRunner().invoke(main, ["demo", str(folder), "--pages", "10", "--quiet"])
    assert again.exit_code == 0, again.output
    assert "Generating" not in again.output
    assert "(10 reused from an earlier run)" in again.output
    assert "explanations written: 0" in again.output
