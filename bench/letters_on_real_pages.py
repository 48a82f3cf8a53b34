"""Letters read as digits on the real scans: the word columns of the 1604 climate table and
the 12 real non-table pages (issue: a detector that keeps letters out).

The 1604 page (``real/tables/1921_pifferi_sfera_1604_p368.jpg``, 960 x 1425 px) prints two
word columns in its table body: the row labels "Principio", "Mezzo", "Fine" (right of the
climate numbers) and the place names ("Per l'Isola di San Tomaso", ...). Every digit detected
on them is a letter read as a digit; the regions below are page px, drawn from the page. The
non-table pages print no digit that matters (a folio at most), so every digit found there
counts as false.

Usage:
    python bench/letters_on_real_pages.py [--weights W.safetensors] [--scale 0.43]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digit_detector import detect, load_detector, load_page

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_real_climate_table import REAL, REAL_PAGE  # noqa: E402

BODY_ROWS = (240, 1330)
"""Top and bottom of the table body (rows 1 to 26), page px."""
WORD_COLUMNS = {"row labels": (360, 445), "place names": (765, 960)}
"""Left and right of each word column inside the body, page px (the row labels' left edge
is right of the climate numbers 1-11 printed before "Mezzo")."""


def letters_on_table(digits) -> dict[str, int]:
    """Detections (x, y page px) on each word column of the 1604 page."""
    body = digits[(digits.y >= BODY_ROWS[0]) & (digits.y <= BODY_ROWS[1])]
    return {name: int(((body.x >= left) & (body.x <= right)).sum())
            for name, (left, right) in WORD_COLUMNS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--scale", type=float, default=None,
                        help="read the 1604 page at this working scale (default: chosen)")
    args = parser.parse_args()
    detector = load_detector(args.weights)
    table = detect(load_page(REAL / "tables" / REAL_PAGE), detector, scale=args.scale,
                   rotation=None if args.scale is None else 0)
    counts = letters_on_table(table.digits)
    print(f"1604 table page: scale {table.prepared.scale:.3f}, {len(table.digits)} digits, "
          f"{sum(counts.values())} on its word columns ({counts})")
    false = {path.name: len(detect(load_page(path), detector).digits)
             for path in sorted((REAL / "nontable").glob("*.jpg"))}
    print(f"12 real non-table pages: {sum(false.values())} digits found "
          f"({', '.join(str(n) for n in false.values())})")


if __name__ == "__main__":
    main()
