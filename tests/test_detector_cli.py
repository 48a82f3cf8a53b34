"""The train-detector, detect and evaluate detection commands, end to end on small inputs."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from test_detector_fixtures import render_table

from digit_detector import DigitDetector, load_detector, save_detector
from sphaera_tables.cli import main


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from corpus_tools.synth import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("corpus"), pages=3, seed=4,
                           typefaces="heldout")


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    return save_detector(DigitDetector(), tmp_path / "random.safetensors")


def test_detect_writes_overlay_and_csv_and_skips_bad_pages(tmp_path, weights):
    grey, _ = render_table(rows=5)
    Image.fromarray(grey).save(tmp_path / "page.png")
    Image.fromarray(grey).convert("RGBA").save(tmp_path / "page_rgba.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "detect", str(tmp_path / "page.png"), str(tmp_path / "broken.jpg"),
        str(tmp_path / "page_rgba.png"), "-o", str(out), "--weights", str(weights), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output and "2 pages written" in result.output
    table = pd.read_csv(out / "page.digits.csv")
    assert list(table.columns) == ["x", "y", "digit", "score", "x0", "y0", "x1", "y1"]
    overlay = Image.open(out / "page.overlay.png")
    assert overlay.size == (grey.shape[1], grey.shape[0]) and overlay.mode == "RGB"
    assert (out / "page_rgba.digits.csv").is_file()


def test_detect_defaults_match_the_library(tmp_path):
    """Without options, the command writes exactly what ``detect`` finds with the shipped
    weights and its default threshold."""
    from digit_detector import detect

    grey, _ = render_table(rows=6)
    Image.fromarray(grey).save(tmp_path / "page.png")
    result = CliRunner().invoke(main, ["detect", str(tmp_path / "page.png"), "-o",
                                       str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "out" / "page.digits.csv")
    expected = detect(grey, load_detector()).digits
    assert len(expected) > 20
    pd.testing.assert_frame_equal(written[["digit", "x", "y"]],
                                  expected[["digit", "x", "y"]].reset_index(drop=True),
                                  check_dtype=False, atol=0.01)


def test_detect_fails_cleanly_when_nothing_is_readable(tmp_path, weights):
    (tmp_path / "empty.png").write_bytes(b"")
    result = CliRunner().invoke(main, ["detect", str(tmp_path / "empty.png"), "-o",
                                       str(tmp_path / "o"), "--weights", str(weights)])
    assert result.exit_code != 0
    assert "empty.png: empty file" in result.output and "no page could be read" in result.output


def test_bad_weight_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04K\x01.")
    result = CliRunner().invoke(main, ["detect", str(bad), "-o", str(tmp_path), "--weights",
                                       str(bad)])
    assert result.exit_code != 0
    assert "Error: " in result.output and "bad.safetensors: not a safetensors" in result.output
    assert "Traceback" not in result.output


def test_train_detector_on_a_synthetic_corpus(tmp_path, corpus):
    out = tmp_path / "trained.safetensors"
    command = ["train-detector", str(corpus), "-o", str(out), "--epochs", "1",
               "--steps-per-epoch", "2", "--quiet"]
    checkpoint = tmp_path / "trained.safetensors.checkpoint"
    checkpoint.write_bytes(b"left over from something else")
    refused = CliRunner().invoke(main, command)
    assert refused.exit_code != 0 and "not a readable training checkpoint" in refused.output
    assert str(checkpoint) in refused.output and "delete it" in refused.output
    checkpoint.unlink()
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output
    assert "trained on" in result.output and str(out) in result.output
    assert len(load_detector(out).config.training_data_hash) == 64
    assert not checkpoint.exists()  # written after the epoch, removed once the weights are saved


def test_train_detector_fine_tunes_from_init_weights(tmp_path, corpus):
    out = tmp_path / "tuned.safetensors"
    command = ["train-detector", str(corpus), "-o", str(out), "--epochs", "1",
               "--steps-per-epoch", "2", "--quiet"]
    missing = CliRunner().invoke(main, command + ["--init", str(tmp_path / "none.safetensors")])
    assert missing.exit_code != 0 and "no such weight file" in missing.output
    result = CliRunner().invoke(main, command + ["--init", "default"])
    assert result.exit_code == 0, result.output
    tuned, shipped = load_detector(out), load_detector()
    assert tuned.config.layers == shipped.config.layers
    # two small steps from the shipped weights: every layer but the last (which carries the
    # output gain of the run) is still within a few percent of them
    pairs = list(zip(tuned.state_dict().values(), shipped.state_dict().values(), strict=True))
    assert all(float((a - b).abs().max() / b.abs().max()) < 0.05 for a, b in pairs[:-1])


def test_evaluate_detection_json(tmp_path, corpus, weights):
    per_page = tmp_path / "pages.csv"
    result = CliRunner().invoke(main, ["evaluate", "detection", str(corpus), "--weights",
                                       str(weights), "--json", "--quiet", "--per-page",
                                       str(per_page)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    truth = pd.read_csv(corpus / "truth" / "digits.csv")
    assert summary["pages"] == 3 and summary["all"]["true_digits"] == len(truth)
    assert len(pd.read_csv(per_page)) == 3


def test_evaluate_detection_needs_ground_truth(tmp_path, weights):
    result = CliRunner().invoke(main, ["evaluate", "detection", str(tmp_path)])
    assert result.exit_code != 0 and "no truth/pages.csv" in result.output


def _recipe(text: str) -> list[str]:
    """The two shell commands of the default-weights recipe in ``text``, blanks normalised."""
    joined = " ".join(text.replace("\\", " ").split())
    return [re.search(pattern, joined).group(0) for pattern in (
        r"tables synth /tmp/detector-train .*?--typefaces [a-z0-9,-]+",
        r"OMP_NUM_THREADS=1 tables train-detector .*?default\.safetensors")]


def test_readme_and_help_give_the_same_default_weights_recipe():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    shown = CliRunner().invoke(main, ["train-detector", "--help"], terminal_width=200)
    assert shown.exit_code == 0
    assert _recipe(readme) == _recipe(shown.output)
