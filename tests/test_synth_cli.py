"""``tables synth``, ``tables make-patches`` and ``tables validate-annotations`` from the
command line."""

import pandas as pd
import pytest
from click.testing import CliRunner

from sphaera_tables.cli import main


@pytest.fixture(scope="module")
def tables():
    return main


def test_synth_writes_a_corpus(tables, tmp_path):
    result = CliRunner().invoke(tables, ["synth", str(tmp_path / "c"), "--pages", "3", "--seed",
                                         "1", "--dpi-range", "150", "160", "--quiet"])
    assert result.exit_code == 0, result.output
    pages = pd.read_csv(tmp_path / "c" / "truth" / "pages.csv")
    assert len(pages) == 3 and pages["dpi"].between(150, 160).all()
    # running again into the same corpus folder replaces it
    again = CliRunner().invoke(tables, ["synth", str(tmp_path / "c"), "--pages", "2", "--quiet"])
    assert again.exit_code == 0
    assert len(list((tmp_path / "c").glob("*.jpg"))) == 2


@pytest.mark.parametrize("arguments, message", [
    (["--pages", "0"], "--pages"),
    (["--typefaces", "nosuch"], "unknown typeface nosuch"),
    (["--dpi-range", "300", "100"], "dpi range"),
    (["--metadata", "/nonexistent.csv"], "does not exist"),
])
def test_synth_bad_arguments(tables, tmp_path, arguments, message):
    result = CliRunner().invoke(tables, ["synth", str(tmp_path / "c"), *arguments])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_synth_unwritable_and_busy_folders(tables, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(tables, ["synth", str(blocker / "c"), "--pages", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "cannot write" in result.output
    assert result.output.count("\n") == 1
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "a.txt").write_text("")
    result = CliRunner().invoke(tables, ["synth", str(busy), "--pages", "1"])
    assert result.exit_code == 1 and "not empty" in result.output


def test_validate_annotations(tables, shared_dir, tmp_path):
    real = shared_dir / "data" / "real" / "metadata" / "numerical_patches.csv"
    result = CliRunner().invoke(tables, ["validate-annotations", str(real)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 494 + 1
    assert all("image not found" in line for line in lines[:-1])
    assert lines[-1].endswith("494 problems")
    missing = CliRunner().invoke(tables, ["validate-annotations", str(tmp_path / "none.csv")])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_make_patches_and_validate_them(tables, tmp_path, monkeypatch):
    import annotations.patches as patches

    calls, original = {}, patches.make_patches

    def small(out_dir, seed, per_digit, negatives):
        calls.update(seed=seed, per_digit=per_digit, negatives=negatives)
        return original(out_dir, seed=seed, per_digit=per_digit,
                        negatives=negatives, typefaces=("cardo",), pages_per_typeface=8)

    monkeypatch.setattr(patches, "make_patches", small)
    result = CliRunner().invoke(tables, ["make-patches", str(tmp_path / "p"), "--seed", "2",
                                         "--per-digit", "1", "--negatives", "2"])
    assert result.exit_code == 0, result.output
    assert calls == {"seed": 2, "per_digit": 1, "negatives": 2}
    checked = CliRunner().invoke(tables, ["validate-annotations", str(tmp_path / "p")])
    assert checked.exit_code == 0, checked.output
    assert "2 negative images, 0 problems" in checked.output
