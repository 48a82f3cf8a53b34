"""Verdicts where the outputs use them: per pair of page ids of a results folder, for the
networks, the report and the ``verdict`` column of ``matches.csv``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from corpus_tools.networks import Match
from corpus_tools.results_folder import ResultsFolder, read_csv_frame
from corpus_tools.storage import write_csv_atomic
from sphaera_tables.review.propagation import propagated_pairs
from sphaera_tables.review.verdicts import (
    CONFIRMED,
    DATABASE_FILE,
    PROPAGATED,
    UNREVIEWED,
    PageKeys,
    VerdictStore,
    stored_page_ids,
)


@dataclass(frozen=True)
class PairState:
    """The verdict that counts for a pair (a stored code or ``propagated``), and the score the
    pair had when it was judged (None for a suggestion)."""

    page_a: str
    page_b: str
    verdict: str
    score: float | None


def pair_states(out_dir: Path | str) -> dict[frozenset, PairState]:
    """``frozenset({page_a, page_b}) -> PairState`` for every reviewed or suggested pair of a
    results folder (empty when nobody has reviewed it yet). Page ids are this folder's."""
    out_dir = Path(out_dir)
    if not (out_dir / DATABASE_FILE).is_file():
        return {}
    keys = PageKeys.of_results(out_dir)
    with VerdictStore.of_results(out_dir) as store:
        latest = store.latest()
    states = {}
    for verdict in latest.values():
        page_a, page_b = keys.page(verdict.key_a, verdict.page_a), \
            keys.page(verdict.key_b, verdict.page_b)
        states[frozenset((page_a, page_b))] = PairState(page_a, page_b, verdict.verdict,
                                                        verdict.score)
    stored = stored_page_ids(latest)
    for key_a, key_b in propagated_pairs(latest):
        page_a, page_b = keys.page(key_a, stored[key_a]), keys.page(key_b, stored[key_b])
        states[frozenset((page_a, page_b))] = PairState(page_a, page_b, PROPAGATED, None)
    return states


def verdict_labels(states: dict[frozenset, PairState]) -> dict[frozenset, str]:
    """``pair -> verdict`` (the form the networks and the report take)."""
    return {pair: state.verdict for pair, state in states.items()}


def confirmed_matches(matches: list[Match], states: dict[frozenset, PairState]) -> list[Match]:
    """The candidate matches confirmed by a verdict, plus every confirmed pair that the run no
    longer proposes (with the score it had when it was confirmed; rank 0 = not listed)."""
    def confirmed(pair):
        return pair in states and states[pair].verdict in CONFIRMED

    kept = [match for match in matches if confirmed(frozenset((match.page_a, match.page_b)))]
    proposed = {frozenset((match.page_a, match.page_b)) for match in matches}
    kept += [
        Match(state.page_a, state.page_b, state.score or 0.0, 0)
        for pair, state in states.items() if confirmed(pair) and pair not in proposed
    ]
    return kept


def annotate_matches_csv(out_dir: Path | str) -> bool:
    """Set the ``verdict`` column of ``OUT/matches.csv`` (added when missing) to each pair's
    verdict (``unreviewed`` when none); nothing happens before the first verdict. The file is
    written as a corpus run writes it (CRLF rows, spreadsheet-safe cells). Returns whether the
    file was written."""
    out_dir = Path(out_dir)
    path = ResultsFolder(out_dir).matches_csv
    if not path.is_file():
        return False
    labels = verdict_labels(pair_states(out_dir))
    if not labels:
        return False
    matches = read_csv_frame(path, ("page_a", "page_b", "verdict"))
    matches["verdict"] = [
        labels.get(frozenset(pair), UNREVIEWED)
        for pair in zip(matches["page_a"], matches["page_b"], strict=True)
    ]
    write_csv_atomic(path, matches)
    return True
