"""The review queue: every candidate pair of a results folder with its metadata and verdict, in a
pandas table that filters, orders and pages in a few milliseconds for 50,000 pairs.

One row per unordered pair of pages: the candidate matches (highest score of both directions,
best rank), plus the reviewed pairs this run no longer proposes and the pairs suggested by
transitivity. Order: unreviewed first (a suggestion counts as unreviewed), then best score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from corpus_tools.networks import Results, build_networks
from sphaera_tables.review.propagation import propagated_pairs
from sphaera_tables.review.verdicts import (
    PROPAGATED,
    UNREVIEWED,
    VERDICTS,
    PageKeys,
    Verdict,
    stored_page_ids,
)

PAGE_SIZE = 50
VERDICT_FILTERS = (*VERDICTS, UNREVIEWED, PROPAGATED, "reviewed")
"""What the verdict filter accepts: a stored verdict, unreviewed, propagated, or reviewed."""
_TEXT_FILTERS = ("book", "printer", "place")
_BASE_COLUMNS = ("key_a", "key_b", "page_a", "page_b", "score", "rank", "proposed")


class FilterError(ValueError):
    """A filter value that cannot be used (the message names it and says what is expected)."""


@dataclass(frozen=True)
class Filters:
    """What the historian asked to see; empty means no restriction."""

    min_score: float | None = None
    max_score: float | None = None
    book: str = ""
    printer: str = ""
    place: str = ""
    family: int | None = None
    verdict: str = ""

    @classmethod
    def parse(cls, args) -> Filters:
        """Filters from query arguments (a mapping of str); raises FilterError."""
        values = {name: (args.get(name) or "").strip() for name in
                  ("min_score", "max_score", "family", "verdict", *_TEXT_FILTERS)}
        parsed = {name: values[name].lower() for name in _TEXT_FILTERS}
        for name in ("min_score", "max_score"):
            if values[name]:
                try:
                    parsed[name] = float(values[name])
                except ValueError:
                    raise FilterError(f"{name} {values[name]!r} is not a number") from None
        if values["family"]:
            if not values["family"].isdigit():
                raise FilterError(f"family {values['family']!r} is not a family number")
            parsed["family"] = int(values["family"])
        if values["verdict"] and values["verdict"] not in VERDICT_FILTERS:
            raise FilterError(f"verdict {values['verdict']!r} is not one of "
                              f"{', '.join(VERDICT_FILTERS)}")
        parsed["verdict"] = values["verdict"]
        return cls(**parsed)

    def query(self) -> dict:
        """The filters as query arguments (only those set)."""
        return {name: value for name, value in vars(self).items() if value not in (None, "")}


class ReviewQueue:
    """The pairs of one results folder; `refresh` joins the verdicts (none at first)."""

    def __init__(self, results: Results, keys: PageKeys):
        self.results, self.keys = results, keys
        self.family_of = _families(results)
        self.texts = _filter_texts(results.pages)
        self.candidates = self._with_metadata(self._candidates())
        self.candidate_pairs = _pairs(self.candidates)
        self.candidate_rows = {pair: row for row, pair in enumerate(self.candidate_pairs)}
        self.candidate_position = _page_position(self.candidates)
        self.refresh({})

    def _candidates(self) -> pd.DataFrame:
        matches = self.results.matches
        frame = pd.DataFrame({
            "page_a": [match.page_a for match in matches],
            "page_b": [match.page_b for match in matches],
            "score": np.array([match.score for match in matches], dtype=float),
            "rank": np.array([match.rank for match in matches], dtype=int),
        })
        frame = self._keyed(frame)
        frame["rank"] = frame["rank"].where(frame["rank"] > 0, np.iinfo(int).max)
        frame = frame.groupby(["key_a", "key_b"], as_index=False, sort=False).agg(
            page_a=("page_a", "first"), page_b=("page_b", "first"), score=("score", "max"),
            rank=("rank", "min"))
        frame["rank"] = frame["rank"].where(frame["rank"] < np.iinfo(int).max, 0)
        frame["proposed"] = True
        return frame

    def _keyed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with ``key_a <= key_b`` and the pages in the same order."""
        key_a = frame["page_a"].map(self.keys.key).astype(object)
        key_b = frame["page_b"].map(self.keys.key).astype(object)
        swap = (key_b < key_a).to_numpy()
        pages_a, pages_b = frame["page_a"].to_numpy(), frame["page_b"].to_numpy()
        return frame.assign(
            key_a=np.where(swap, key_b, key_a), key_b=np.where(swap, key_a, key_b),
            page_a=np.where(swap, pages_b, pages_a), page_b=np.where(swap, pages_a, pages_b),
        )

    def refresh(self, latest: dict[tuple[str, str], Verdict]) -> None:
        """Join the verdicts that count now (and the suggestions they imply) to the pairs."""
        suggested = propagated_pairs(latest)
        stored = stored_page_ids(latest)
        known = self.candidate_rows
        extra = [
            {"key_a": verdict.key_a, "key_b": verdict.key_b,
             "page_a": self.keys.page(verdict.key_a, verdict.page_a),
             "page_b": self.keys.page(verdict.key_b, verdict.page_b),
             "score": np.nan if verdict.score is None else verdict.score, "rank": 0,
             "proposed": False}
            for pair, verdict in latest.items() if pair not in known
        ]
        extra += [
            {"key_a": key_a, "key_b": key_b, "page_a": self.keys.page(key_a, stored[key_a]),
             "page_b": self.keys.page(key_b, stored[key_b]), "score": np.nan, "rank": 0,
             "proposed": False}
            for key_a, key_b in suggested if (key_a, key_b) not in known
        ]
        extra = self._with_metadata(pd.DataFrame(extra, columns=list(_BASE_COLUMNS)))
        frame = pd.concat([self.candidates, extra], ignore_index=True) if len(extra) \
            else self.candidates.copy()
        rows = {**self.candidate_rows, **{pair: len(self.candidates) + row
                                          for row, pair in enumerate(_pairs(extra))}}
        verdicts = np.full(len(frame), UNREVIEWED, dtype=object)
        via = np.full(len(frame), "", dtype=object)
        for pair, linking in suggested.items():
            verdicts[rows[pair]] = PROPAGATED
            via[rows[pair]] = self.keys.page(linking, stored[linking])
        for pair, verdict in latest.items():
            verdicts[rows[pair]] = verdict.verdict
        frame["verdict"], frame["via"] = verdicts, via
        frame["reviewed"] = frame["verdict"].isin(list(VERDICTS))
        self.frame = frame
        self.position = {**self.candidate_position,
                         **_page_position(extra, offset=len(self.candidates))}

    def _with_metadata(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the filters' text of both pages and the family of page A."""
        for name, text in self.texts.items():
            frame[name] = (frame["page_a"].map(text).fillna("") + " | "
                           + frame["page_b"].map(text).fillna(""))
        frame["family"] = frame["page_a"].map(self.family_of).fillna(0).astype(int)
        return frame

    def select(self, filters: Filters) -> np.ndarray:
        """Row numbers of the pairs that pass ``filters``, in queue order."""
        frame = self.frame
        keep = np.ones(len(frame), dtype=bool)
        score = frame["score"].to_numpy()
        if filters.min_score is not None:
            keep &= score >= filters.min_score
        if filters.max_score is not None:
            keep &= score <= filters.max_score
        for name in _TEXT_FILTERS:
            wanted = getattr(filters, name)
            if wanted:
                keep &= frame[name].str.contains(wanted, regex=False).to_numpy()
        if filters.family is not None:
            keep &= frame["family"].to_numpy() == filters.family
        if filters.verdict == "reviewed":
            keep &= frame["reviewed"].to_numpy()
        elif filters.verdict:
            keep &= frame["verdict"].to_numpy() == filters.verdict
        rows = np.flatnonzero(keep)
        unknown = np.isnan(score[rows])
        order = np.lexsort((rows, -np.nan_to_num(score[rows], nan=-np.inf), unknown,
                            frame["reviewed"].to_numpy()[rows]))
        return rows[order]

    def neighbours(self, filters: Filters, row: int) -> tuple[int | None, int | None]:
        """The pairs before and after ``row`` among those passing ``filters``, ordered by score
        alone (so that giving a verdict does not move the historian's place in the queue)."""
        rows = np.union1d(self.select(filters), [row])
        score = np.nan_to_num(self.frame["score"].to_numpy()[rows], nan=-np.inf)
        order = rows[np.lexsort((rows, -score))]
        at = int(np.flatnonzero(order == row)[0])
        previous = int(order[at - 1]) if at > 0 else None
        following = int(order[at + 1]) if at + 1 < len(order) else None
        return previous, following

    def row_of(self, page_a: str, page_b: str) -> int | None:
        """The row of a pair given by page ids (either order), or None."""
        return self.position.get(frozenset((page_a, page_b)))


def _filter_texts(pages: dict) -> dict[str, dict[str, str]]:
    """Per text filter, page id -> the lower-case text it searches (book: id and title)."""
    return {
        "book": {page: f"{r.get('book_id', '')} {r.get('title', '')}".lower()
                 for page, r in pages.items()},
        "printer": {page: "; ".join(r.get("printer", [])).lower() for page, r in pages.items()},
        "place": {page: "; ".join(r.get("place", [])).lower() for page, r in pages.items()},
    }


def _page_position(frame: pd.DataFrame, offset: int = 0) -> dict[frozenset, int]:
    """``frozenset({page_a, page_b}) -> row`` (plus ``offset``) for the rows of ``frame``."""
    pages = zip(frame["page_a"].tolist(), frame["page_b"].tolist(), strict=True)
    return {frozenset(pair): offset + row for row, pair in enumerate(pages)}


def _pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["key_a"].tolist(), frame["key_b"].tolist(), strict=True))


def _families(results: Results) -> dict[str, int]:
    """Page id -> table family number (of the candidate matches)."""
    _, families = build_networks(results, levels=("page",))
    return {page: family["family"] for family in families for page in family["pages"]}
