"""Check that today's page step finds the same digits as the committed one (git HEAD).

Runs the committed and today's ``analyse_page`` (detection, bigram counts, explanation
factors; see ``bench/snapshot.py``) on every page of the given folders and counts, per page,
digits added, lost and moved (same digit within 1 px, position changed by more than
``--move-px``), changes of working scale or rotation, and the largest change of the bigram
counts and factors. On a synthetic corpus (a folder with ``truth/digits.csv``) it also scores
both against the truth: precision, recall and F1 as ``tables evaluate detection`` counts them.

Usage:
    tables synth /tmp/speed_pages --pages 40 --seed 77 --typefaces heldout
    python bench/check_detections_unchanged.py /tmp/speed_pages \\
        ../shared/data/real/tables ../shared/data/real/nontable
Exit status 1 when any digit, scale or rotation differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))

from snapshot import current_modules, snapshot_modules  # noqa: E402

from digit_detector.evaluation import match_digits  # noqa: E402
from digit_detector.page import IMAGE_SUFFIXES, load_page  # noqa: E402
from digit_detector.weights import load_detector  # noqa: E402

MATCH_PX = 1.0
"""Old and new digits of the same class closer than this (page px) are the same digit."""


def digit_changes(old: pd.DataFrame, new: pd.DataFrame, move_px: float) -> dict[str, float]:
    """Digits ``added`` (new only), ``lost`` (old only) and ``moved`` (matched, but more than
    ``move_px`` apart) between two digit tables (columns x, y, digit; page px), and the
    ``largest_move`` of a matched digit (page px)."""
    added = lost = moved = 0
    largest = 0.0
    for digit in np.union1d(old.digit.unique(), new.digit.unique()):
        before = old.loc[old.digit == digit, ["x", "y"]].to_numpy(float)
        after = new.loc[new.digit == digit, ["x", "y"]].to_numpy(float)
        if len(before) == 0 or len(after) == 0:
            added, lost = added + len(after), lost + len(before)
            continue
        distance, nearest = cKDTree(before).query(after, distance_upper_bound=MATCH_PX)
        found = np.isfinite(distance)
        matched = len(np.unique(nearest[found]))
        added += len(after) - matched
        lost += len(before) - matched
        moved += int((distance[found] > move_px).sum())
        largest = max(largest, float(distance[found].max(initial=0.0)))
    return {"added": added, "lost": lost, "moved": moved, "largest_move": largest}


def compare_page(grey, detector, old, new, move_px: float) -> tuple[dict, object, object]:
    """Both analyses of one page and their differences (one row of the report)."""
    before = old.page_analysis.analyse_page(grey, detector, old.page_analysis.FeatureConfig())
    after = new.page_analysis.analyse_page(grey, detector, new.page_analysis.FeatureConfig())
    row = digit_changes(before.digits, after.digits, move_px)
    same_shape = before.factors.shape == after.factors.shape
    row.update(
        digits=len(after.digits),
        scale_changed=not np.isclose(before.scale, after.scale, rtol=0, atol=1e-12),
        rotation_changed=before.rotation != after.rotation,
        phi_change=float(np.abs(before.phi - after.phi).max()),
        factor_change=float(np.abs(before.factors - after.factors).max()) if same_shape
        else float("inf"),
    )
    return row, before, after


def page_paths(folders) -> list[Path]:
    """Page images of ``folders`` (not their subfolders), sorted."""
    return [path for folder in folders for path in sorted(Path(folder).iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES]


def truth_digits(folder: Path) -> pd.DataFrame | None:
    """The true digits of a synthetic corpus (None for a plain folder of scans)."""
    table = folder / "truth" / "digits.csv"
    return pd.read_csv(table) if table.is_file() else None


def scores(counts) -> str:
    """Precision, recall and F1 of summed match counts (tp, fp, fn)."""
    tp, fp, fn = counts
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    f1 = 2 * precision * recall / max(1e-12, precision + recall)
    return f"precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--rev", default="HEAD", help="the committed version to compare with")
    parser.add_argument("--move-px", type=float, default=1e-6,
                        help="a matched digit further than this (page px) counts as moved")
    args = parser.parse_args()
    detector = load_detector()
    detector.eval()
    old, new = snapshot_modules(args.rev), current_modules()
    rows, f1_counts = [], {"old": np.zeros(3), "new": np.zeros(3)}
    for folder in args.folders:
        truth = truth_digits(folder)
        for path in page_paths([folder]):
            row, before, after = compare_page(load_page(path), detector, old, new, args.move_px)
            rows.append({"page": path.name, **row})
            if truth is not None:
                page_truth = truth[truth.page_id == path.name]
                for name, analysis in (("old", before), ("new", after)):
                    counts = match_digits(analysis.digits, page_truth)
                    f1_counts[name] += (counts.true_positives, counts.false_positives,
                                        counts.false_negatives)
            print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    table = pd.DataFrame(rows)
    changed = table[["added", "lost", "moved"]].sum()
    print(f"\n{len(table)} pages, {table.digits.sum()} digits: added {changed.added}, lost "
          f"{changed.lost}, moved {changed.moved}; scale changed on "
          f"{int(table.scale_changed.sum())}, rotation on {int(table.rotation_changed.sum())} "
          f"pages; largest move {table.largest_move.max():.3g} px, largest change of phi {table.phi_change.max():.3g}, of factors "
          f"{table.factor_change.max():.3g}")
    if f1_counts["old"].any():
        for name, counts in f1_counts.items():
            print(f"synthetic pages, {name}: {scores(counts)}")
    different = changed.sum() + table.scale_changed.sum() + table.rotation_changed.sum()
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
