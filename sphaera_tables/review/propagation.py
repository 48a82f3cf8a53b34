"""Suggestions by transitivity: A = B and B = C confirmed as the same table proposes A = C.

A suggestion is marked ``propagated`` until someone gives the pair a verdict of its own.
Only "same table" propagates ("some rows shared" need not be shared by a third page).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

from sphaera_tables.review.verdicts import Verdict

PROPAGATING = "same_table"


def propagated_pairs(latest: dict[tuple[str, str], Verdict]) -> dict[tuple[str, str], str]:
    """Unreviewed pairs ``(key_a, key_b)`` (``key_a < key_b``) that two "same table" verdicts
    imply, each with the key of the page that links them."""
    partners = defaultdict(set)
    for (key_a, key_b), verdict in latest.items():
        if verdict.verdict == PROPAGATING:
            partners[key_a].add(key_b)
            partners[key_b].add(key_a)
    suggested = {}
    for via in sorted(partners):
        for key_a, key_b in combinations(sorted(partners[via]), 2):
            if (key_a, key_b) not in latest and key_a != key_b:
                suggested.setdefault((key_a, key_b), via)
    return suggested
