"""The page step as committed (``git show REV:...``), importable beside today's code.

The benches and the detection check compare today's page step with the committed one in the
same process: :func:`snapshot_modules` reads the committed ``digit_detector/forward.py``,
``digit_detector/prepare.py``, ``digit_detector/words.py``, ``digit_detector/inference.py``,
``sphaera_tables/bigram.py`` and ``sphaera_tables/page_analysis.py``, rewires their imports of each other to the snapshot copies
and imports them under private names. Everything else (the model, pooling) is today's, shared
by both, and so is any of these files that the revision does not have.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType, SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT_FILES = {
    "forward": "digit_detector/forward.py",
    "prepare": "digit_detector/prepare.py",
    "words": "digit_detector/words.py",
    "inference": "digit_detector/inference.py",
    "bigram": "sphaera_tables/bigram.py",
    "page_analysis": "sphaera_tables/page_analysis.py",
}
"""Snapshot name -> committed file, in import order (each may import the ones before it)."""


def snapshot_modules(rev: str = "HEAD") -> SimpleNamespace:
    """The committed ``forward``, ``prepare``, ``words``, ``inference``, ``bigram`` and
    ``page_analysis`` modules of ``rev``, as attributes of the returned namespace (imported as
    ``_snapshot_<name>``; today's module where ``rev`` has no such file)."""
    modules = {}
    with tempfile.TemporaryDirectory(prefix="page_step_snapshot_") as folder:
        for name, path in SNAPSHOT_FILES.items():
            shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT,
                                   capture_output=True, text=True)
            if shown.returncode != 0:
                if _exists(rev, path):
                    raise RuntimeError(f"git show {rev}:{path} failed: {shown.stderr.strip()}")
                continue
            source = shown.stdout
            for earlier in modules:
                dotted = SNAPSHOT_FILES[earlier].removesuffix(".py").replace("/", ".")
                source = source.replace(f"from {dotted} import",
                                        f"from _snapshot_{earlier} import")
            modules[name] = _import_file(Path(folder) / f"_snapshot_{name}.py", source)
    return SimpleNamespace(**modules)


def _exists(rev: str, path: str) -> bool:
    """Whether revision ``rev`` has the file ``path``."""
    listed = subprocess.run(["git", "ls-tree", "--name-only", rev, "--", path], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    return bool(listed.strip())


def _import_file(path: Path, source: str) -> ModuleType:
    """Write ``source`` to ``path`` and import it under the file's stem (kept in
    ``sys.modules``, so that later snapshot modules can import it; the file is no longer
    needed once imported)."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def current_modules() -> SimpleNamespace:
    """Today's modules, in the same shape as :func:`snapshot_modules`."""
    from digit_detector import forward, inference, prepare, words
    from sphaera_tables import bigram, page_analysis

    return SimpleNamespace(forward=forward, prepare=prepare, words=words, inference=inference, bigram=bigram,
                           page_analysis=page_analysis)
