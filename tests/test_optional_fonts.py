"""The fonts (optional extra ``synth``) are needed by the synthetic generator alone: without
them the command line imports, detects and compares pages, and the generator says what to
install."""

import subprocess
import sys
import textwrap

import pytest
from PIL import Image
from test_detector_fixtures import render_table

WITHOUT_FONTS = textwrap.dedent("""
    import sys

    attempts = []


    class BlockFonts:
        '''Import hook: every import of a fontpkg module fails, as when the extra is missing.'''

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "fontpkg" or name.startswith("fontpkg_"):
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    sys.meta_path.insert(0, BlockFonts())
    for name in [n for n in sys.modules if n.startswith("fontpkg")]:
        del sys.modules[name]

    from click.testing import CliRunner

    from sphaera_tables.cli import main

    runner = CliRunner()
    for arguments in (["--help"], ["detect", "--help"], ["similarity", "--help"]):
        result = runner.invoke(main, arguments)
        assert result.exit_code == 0, (arguments, result.output)
    pages, out = sys.argv[1], sys.argv[2]
    result = runner.invoke(main, ["detect", pages + "/p0.png", "-o", out + "/detect", "--quiet"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["similarity", pages, "-o", out + "/results", "--quiet"])
    assert result.exit_code == 0, result.output
    assert attempts == [], attempts  # nothing even tried to import the fonts

    import corpus_tools.synth  # importable; fails only where a font is needed
    from corpus_tools.synth.typefaces import load_font

    try:
        load_font("cardo", 20)
    except ImportError as error:
        assert str(error) == ("the synthetic generator needs the fonts of the optional extra: "
                              "pip install 'sphaera-tables[synth]'"), error
    else:
        raise AssertionError("load_font worked without fontpkg")
    for command in (["synth", out + "/corpus", "--pages", "1"], ["demo", out + "/demo"],
                    ["make-patches", out + "/patches"]):
        result = runner.invoke(main, command)  # a one-line error, no traceback
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), command
        assert "pip install 'sphaera-tables[synth]'" in result.output, result.output
    print("ok")
""")


@pytest.mark.slow  # about 8 s: runs in `make test-slow` (CI)
def test_the_toolkit_works_without_the_fonts_of_the_synth_extra(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    for seed in range(2):
        Image.fromarray(render_table(rows=6, seed=seed)[0]).save(pages / f"p{seed}.png")
    done = subprocess.run([sys.executable, "-c", WITHOUT_FONTS, str(pages), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
