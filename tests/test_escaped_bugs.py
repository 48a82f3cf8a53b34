"""Four bugs once slipped past every test (issue 23); each test here fails if one comes back.

1. the page cache key ignoring the detector weights or the feature settings;
2. a pair's explanation kept when only its JSON or only its PNG exists;
3. the pixel-level explanation using other rules than zB on the input convolution and
   LRP-gamma 0.5 on every other one (every rule conserves, so a residual cannot tell);
4. ``tables explain --results`` scoring a pair without the corpus statistics of the run.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from real_crops import REAL_PAGE, write_real_crops
from torch import nn

from corpus_tools.ingest import file_sha256
from corpus_tools.networks import pair_key
from corpus_tools.storage import write_json_atomic
from digit_detector.prepare import prepare_page
from digit_detector.weights import DEFAULT_WEIGHTS, load_detector, save_detector
from sphaera_tables import page_task, similarity
from sphaera_tables.bigram import PageModel
from sphaera_tables.cli import main
from sphaera_tables.explain import (
    Composite,
    Gamma,
    PooledFactors,
    ZBox,
    bilrp,
    grid_labels,
    pooled_lrp_factors,
)
from sphaera_tables.page_analysis import FeatureConfig, analyse_page
from sphaera_tables.page_task import cache_key
from sphaera_tables.pixel_explanation import detector_composite, pixel_explanation
from sphaera_tables.scoring import CorpusStatistics, ScoreModel, page_maps
from sphaera_tables.similarity import SimilarityOptions, run_similarity

NO_EXPLANATIONS = SimilarityOptions(min_score=0.0, explain=False, report=False, networks=False)
EXPLAINED = SimilarityOptions(min_score=0.0, top_k=2, report=False, networks=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three crops of one real table page (different numbers on each)."""
    return write_real_crops(tmp_path_factory.mktemp("escaped") / "corpus")


@pytest.fixture(scope="module")
def explained(corpus, tmp_path_factory) -> Path:
    """A finished run with explanations; tests copy it before changing anything."""
    out = tmp_path_factory.mktemp("escaped") / "out"
    run_similarity(corpus, out, EXPLAINED)
    return out


def _folder_bytes(out: Path, names) -> dict[str, bytes]:
    files = {}
    for name in names:
        paths = sorted((out / name).rglob("*")) if (out / name).is_dir() else [out / name]
        files.update({str(p.relative_to(out)): p.read_bytes() for p in paths if p.is_file()})
    return files


RUN_OUTPUTS = ("features.npy", "cell_features.npz", "corpus_statistics.npz", "similarity.npy",
               "matches.csv", "pages.csv", "variants.csv", "explanations")


# 1. the cache key ------------------------------------------------------------------------------

def test_cache_key_changes_with_the_detector_weights_every_setting_and_the_code(monkeypatch):
    content, model = "c" * 64, "m" * 64
    key = cache_key(content, model, FeatureConfig())
    assert cache_key(content, model, FeatureConfig()) == key
    assert cache_key(content, "n" * 64, FeatureConfig()) != key
    assert cache_key("d" * 64, model, FeatureConfig()) != key
    for other in (FeatureConfig(threshold=0.25), FeatureConfig(link_radius=2.0),
                  FeatureConfig(shift_factors=(1.0,)), FeatureConfig(rise_factors=(0.0,))):
        assert cache_key(content, model, other) != key, other
    monkeypatch.setattr(page_task, "analysis_code_fingerprint", lambda: "0" * 64)
    assert cache_key(content, model, FeatureConfig()) != key


def test_other_detector_weights_reanalyse_every_page_and_equal_weights_reuse_them(
        corpus, explained, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(explained, out)
    same_bytes = tmp_path / "copy.safetensors"
    shutil.copyfile(DEFAULT_WEIGHTS, same_bytes)
    options = dataclasses.replace(NO_EXPLANATIONS, detector_file=str(same_bytes))
    assert run_similarity(corpus, out, options).pages_reused == 3

    detector = load_detector()
    with torch.no_grad():
        detector.layers[0].weight.mul_(1.001)
    changed = save_detector(detector, tmp_path / "changed.safetensors")
    assert file_sha256(changed) != file_sha256(DEFAULT_WEIGHTS)
    options = dataclasses.replace(NO_EXPLANATIONS, detector_file=str(changed))
    summary = run_similarity(corpus, out, options)
    assert (summary.pages_ok, summary.pages_reused) == (3, 0)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model_hash"] == file_sha256(changed)
    assert len(list((out / "cache").glob("*/*.npz"))) == 6


def test_other_feature_settings_reanalyse_every_page(corpus, explained, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(explained, out)
    options = dataclasses.replace(NO_EXPLANATIONS, features=FeatureConfig(threshold=0.25))
    assert run_similarity(corpus, out, options).pages_reused == 0


# 2. an explanation with only one of its two files ---------------------------------------------

@pytest.mark.parametrize("lost", [".png", ".json"])
def test_an_explanation_missing_one_file_is_redone_on_rerun(corpus, explained, tmp_path, lost):
    out = tmp_path / "out"
    shutil.copytree(explained, out)
    matches = pd.read_csv(out / "matches.csv")
    key = pair_key(matches.page_a[0], matches.page_b[0])
    (out / "explanations" / f"{key}{lost}").unlink()
    summary = run_similarity(corpus, out, EXPLAINED)
    assert summary.explanations_written == 1
    assert _folder_bytes(out, RUN_OUTPUTS) == _folder_bytes(explained, RUN_OUTPUTS)


def test_a_crash_between_an_explanations_png_and_json_resumes_to_the_same_outputs(
        corpus, explained, tmp_path, monkeypatch):
    out = tmp_path / "out"

    def crash_at_the_second_json(target, record):
        if target.parent.name == "explanations" and list((out / "explanations").glob("*.json")):
            raise KeyboardInterrupt
        write_json_atomic(target, record)

    monkeypatch.setattr(similarity, "write_json_atomic", crash_at_the_second_json)
    with pytest.raises(KeyboardInterrupt):
        run_similarity(corpus, out, EXPLAINED)
    monkeypatch.undo()
    pictures = list((out / "explanations").glob("*.png"))
    records = list((out / "explanations").glob("*.json"))
    assert (len(pictures), len(records)) == (2, 1)  # the crash fell between PNG and JSON
    summary = run_similarity(corpus, out, EXPLAINED)
    assert summary.explanations_written == summary.matches - 1
    assert _folder_bytes(out, RUN_OUTPUTS) == _folder_bytes(explained, RUN_OUTPUTS)


# 3. the rules of the pixel-level explanation ---------------------------------------------------

def test_pixel_rules_are_zb_on_the_input_convolution_and_gamma_half_on_the_others():
    detector = load_detector()
    model = PageModel(detector, FeatureConfig().head(detector.config))
    composite = detector_composite(detector)
    convolutions = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convolutions) >= 2
    (first, first_module), *others = convolutions
    assert composite.rule_for(first, first_module) == ZBox(0.0, 1.0)
    for name, module in others:
        assert composite.rule_for(name, module) == Gamma(0.5), name


def test_pixel_level_relevance_follows_the_paper_rules_not_plain_gradients():
    """The relevance of the pixel path equals BiLRP computed here with the paper's rules set
    by hand, and differs from the same pair under LRP-0 (which conserves as well)."""
    detector = load_detector().eval()
    features = FeatureConfig()
    head = features.head(detector.config)
    page = np.asarray(Image.open(REAL_PAGE).convert("L"))
    greys = [page[top: top + 120, 200:520] for top in (300, 560)]  # 5 bigrams in common
    analyses = [analyse_page(grey, detector, features) for grey in greys]
    maps = [page_maps(a.phi, a.cells.counts(), CorpusStatistics.neutral(), ScoreModel())
            for a in analyses]
    cell = 16
    explanation, _, _ = pixel_explanation(greys, analyses, maps, detector, head, cell)

    def relevance_under(composite):
        model = PageModel(detector, head).eval()
        pooled = []
        for grey, analysis, linear_maps in zip(greys, analyses, maps, strict=True):
            x = prepare_page(grey, detector, scale=analysis.scale,
                             rotation=analysis.rotation).image
            factors = pooled_lrp_factors(model, x, grid_labels(tuple(x.shape[-2:]), cell),
                                         composite)
            pooled.append(PooledFactors(values=linear_maps.bigram @ factors.values,
                                        phi=linear_maps.bigram @ factors.phi,
                                        centres=factors.centres))
        return bilrp(*pooled)

    reference = relevance_under(Composite({"detector.layers.0": ZBox(0.0, 1.0),
                                           nn.Conv2d: Gamma(0.5)}))
    paper = reference.relevance
    plain = relevance_under(Composite({nn.Conv2d: Gamma(0.0)})).relevance
    # the pixel path keeps only the super-pixels that carry relevance: set back on the grid,
    # every other entry is zero
    rows, columns = (_grid_positions(mine, everyone) for mine, everyone in (
        (explanation.centres_a, reference.centres_a), (explanation.centres_b, reference.centres_b)))
    assert len(rows) < len(paper) and len(columns) < paper.shape[1]
    relevance = np.zeros_like(paper)
    relevance[np.ix_(rows, columns)] = explanation.relevance
    scale = np.abs(paper).max()
    assert scale > 0
    np.testing.assert_allclose(relevance, paper, atol=1e-6 * scale)
    assert np.abs(relevance - plain).max() > 0.01 * scale


def _grid_positions(centres: np.ndarray, grid_centres: np.ndarray) -> np.ndarray:
    """Index of each of ``centres`` (G, 2) among ``grid_centres`` (N, 2), matched exactly."""
    index = {tuple(centre): i for i, centre in enumerate(grid_centres.tolist())}
    return np.array([index[tuple(centre)] for centre in centres.tolist()])


# 4. explain --results --------------------------------------------------------------------------

def test_explain_with_results_reproduces_the_runs_score_for_the_pair(corpus, explained,
                                                                     tmp_path):
    match = pd.read_csv(explained / "matches.csv").sort_values("score").iloc[-1]
    target = tmp_path / "pair.png"
    result = CliRunner().invoke(main, [
        "explain", str(corpus / match.page_a), str(corpus / match.page_b), "-o", str(target),
        "--no-pixels", "--results", str(explained)])
    assert result.exit_code == 0, result.output
    record = json.loads(target.with_suffix(".json").read_text())
    assert record["score"] == pytest.approx(match.score, abs=2e-6)  # matches.csv: 6 decimals
