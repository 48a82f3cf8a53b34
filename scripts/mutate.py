"""Mutation testing of the core modules with mutmut (``make mutate``; see docs/testing.md).

Each module is mutated against its own fast test files only (``MODULE_TESTS``), in a private
copy of the repository (``--work``, default ``/tmp/sphaera-mutate``): mutmut writes its mutated
tree under ``mutants/`` of the folder it runs in, so the working tree is never touched. Prints
one line per module (killed / all, score) and the mutants that survived, and writes the same
to ``WORK/summary.txt``. Usage: ``python scripts/mutate.py [MODULE ...]`` (default: all).

``--recheck`` reuses the copies of an earlier run: it brings the module's test files up to date
there and runs only the mutants that were not detected (the mutated code stays that of the
earlier run), which is how tests written for survivors are checked without a full run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE_TESTS = {
    "sphaera_tables/bigram.py": ["tests/test_bigram.py"],
    "sphaera_tables/cells.py": ["tests/test_cells.py"],
    "sphaera_tables/numbers.py": ["tests/test_numbers.py", "tests/test_cells.py"],
    "sphaera_tables/collation.py": ["tests/test_collation_units.py", "tests/test_cells.py"],
    "sphaera_tables/features.py": ["tests/test_search_features.py"],
    "sphaera_tables/search.py": ["tests/test_search_features.py"],
    "sphaera_tables/explain/rules.py": ["tests/test_explain_rules_units.py",
                                        "tests/test_explain_engine.py",
                                        "tests/test_explain_reference.py",
                                        "tests/test_explain_guardrails.py",
                                        "tests/test_explain_transformers.py"],
    "sphaera_tables/explain/factors.py": ["tests/test_explain_factors_units.py",
                                          "tests/test_explain_engine.py",
                                          "tests/test_explain_reference.py"],
    "sphaera_tables/explain/pair_relevance.py": ["tests/test_explain_pair_units.py",
                                                 "tests/test_explain_engine.py",
                                                 "tests/test_explain_reference.py"],
    "sphaera_tables/page_task.py": ["tests/test_page_task.py"],
    "corpus_tools/storage.py": ["tests/test_storage.py", "tests/test_corpus_infrastructure.py",
                                "tests/test_results_folder.py"],
    "sphaera_tables/evaluation.py": ["tests/test_evaluation_units.py",
                                     "tests/test_match_evaluation.py"],
}
"""Each core module and the fast test files that are meant to catch a wrong implementation."""
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
UNDETECTED = {"survived", "no tests", "suspicious"}
DETECTED_CODES = {1, 3, 24, -24, 152, 255, 36, -11, -9, 37}
"""mutmut's exit codes of a killed, timed-out, crashed or type-checked mutant (mutmut.stats)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(MODULE_TESTS),
                        help="modules to mutate (paths as in MODULE_TESTS)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/sphaera-mutate"))
    parser.add_argument("--max-children", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument("--recheck", action="store_true",
                        help="rerun the undetected mutants of an earlier run with today's tests")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULE_TESTS]
    if unknown:
        parser.error(f"no test files listed for {unknown}; known: {sorted(MODULE_TESTS)}")
    lines = []
    for module in args.modules:
        work = args.work / Path(module).stem
        if args.recheck:
            forget_undetected(module, work)
        statuses = mutate_module(module, work, args.max_children, fresh=not args.recheck)
        block = summary_lines(module, statuses)
        lines.extend(block)
        print("\n".join(block), flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


def mutate_module(module: str, work: Path, max_children: int, fresh: bool = True
                  ) -> dict[str, str]:
    """Run mutmut on ``module`` in a fresh copy of the repository (or the copy of an earlier
    run); ``{mutant: status}``."""
    if fresh:
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(
            ".git", ".venv-mutate", "mutants", "__pycache__", "*.egg-info", ".pytest_cache",
            ".hypothesis", "demo-results", "build", "dist", "tmp", "shared"))
        write_config(work / "pyproject.toml", module)
        link_shared_data(work)
    mutmut = [sys.executable, "-m", "mutmut"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one torch thread per mutant process
    subprocess.run([*mutmut, "run", "--max-children", str(max_children)], cwd=work, env=env,
                   check=False)
    listing = subprocess.run([*mutmut, "results", "--all", "true"], cwd=work, env=env,
                             check=True, capture_output=True, text=True).stdout
    return dict(re.findall(r"^\s*(\S+): (.+)$", listing, flags=re.MULTILINE))


def link_shared_data(work: Path) -> None:
    """Tests find the real pages in ``shared/`` beside the repository (``tests/`` ->
    ``../../shared``); mutmut runs them from ``WORK/mutants/tests``, so the copy gets a link
    ``WORK/shared`` to the repository's neighbour."""
    shared, beside = ROOT.parent / "shared", work / "shared"
    if shared.is_dir() and not beside.exists():
        beside.symlink_to(shared, target_is_directory=True)


def forget_undetected(module: str, work: Path) -> None:
    """Copy the module's test files into ``work`` (a file added to ``MODULE_TESTS`` since
    included) and mark its undetected mutants unchecked."""
    if not (work / "mutants").is_dir():
        raise SystemExit(f"{work}: no earlier run of {module} to recheck")
    for test_file in MODULE_TESTS[module]:
        shutil.copyfile(ROOT / test_file, work / test_file)
    write_config(work / "pyproject.toml", module)
    # mutmut runs on a mutant only the tests that called its function in the clean run; a test
    # changed since (same name, new calls) must be traced again, or it is never run on them
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    for meta in (work / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        codes = data["exit_code_by_key"]
        data["exit_code_by_key"] = {k: c if c in DETECTED_CODES else None
                                    for k, c in codes.items()}
        meta.write_text(json.dumps(data), encoding="utf-8")


def write_config(pyproject: Path, module: str) -> None:
    """Add ``module`` and its test files to the copy's ``[tool.mutmut]`` table (replacing
    the settings an earlier run added)."""
    text = pyproject.read_text(encoding="utf-8")
    text = re.sub(r"^(only_mutate|pytest_add_cli_args_test_selection) = .*\n", "", text,
                  flags=re.MULTILINE)
    header = "[tool.mutmut]\n"
    if header not in text:
        raise SystemExit(f"{pyproject}: no {header.strip()} table")
    tests = ", ".join(f'"{path}"' for path in MODULE_TESTS[module])
    settings = f'only_mutate = ["{module}"]\npytest_add_cli_args_test_selection = [{tests}]\n'
    pyproject.write_text(text.replace(header, header + settings, 1), encoding="utf-8")


def summary_lines(module: str, statuses: dict[str, str]) -> list[str]:
    """``module: killed K of N (score %)`` and one indented line per undetected mutant."""
    judged = {name: s for name, s in statuses.items() if s in DETECTED | UNDETECTED}
    killed = sum(s in DETECTED for s in judged.values())
    score = 100 * killed / len(judged) if judged else float("nan")
    lines = [f"{module}: killed {killed} of {len(judged)} ({score:.1f} %)"]
    lines.extend(f"    {name}: {s}" for name, s in sorted(judged.items()) if s in UNDETECTED)
    return lines


if __name__ == "__main__":
    sys.exit(main())
