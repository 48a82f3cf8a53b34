"""The match list ranked by collation: known answers for the match score and the ranking."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from digit_detector.geometry import class_height_ratios
from digit_detector.model import DetectorConfig
from sphaera_tables import similarity
from sphaera_tables.collation import (
    AGREEMENT_POWER,
    VARIANT_COLUMNS,
    Collation,
    agreement,
    match_score,
)
from sphaera_tables.number_links import collation_of, explain_match
from sphaera_tables.ranking import MATCH_COLUMNS, match_score_matrix, ranked_matches
from sphaera_tables.reference import perfect_analysis, read_truth_digits
from sphaera_tables.scoring import ScoreModel, score_corpus


def collation(agree: int, differ: int) -> Collation:
    """A collation with ``agree`` anchored cells in one aligned row and ``differ`` variants."""
    rows = pd.DataFrame({"row_a": [0], "row_b": [0], "anchors": [agree], "relevance": [1.0]})
    variants = pd.DataFrame([[i, i, 0, 0, "12", "13"] for i in range(differ)],
                            columns=VARIANT_COLUMNS)
    return Collation(rows, variants)


def test_counts_and_agreement_of_a_collation():
    assert (collation(18, 2).cells_agree, collation(18, 2).cells_differ) == (18, 2)
    assert agreement(18, 2) == pytest.approx(0.9)
    assert agreement(0, 0) == 1.0  # nothing aligned: nothing speaks against the pair
    assert agreement(0, 5) == 0.0
    np.testing.assert_allclose(agreement(np.array([3, 0]), np.array([1, 0])), [0.75, 1.0])


def test_match_score_weighs_the_similarity_by_the_agreement():
    assert AGREEMENT_POWER == 2
    assert match_score(0.8, 18, 2) == pytest.approx(0.8 * 0.81)
    assert match_score(0.8, 40, 0) == pytest.approx(0.8)
    assert match_score(0.8, 0, 0) == pytest.approx(0.8)
    # an edition with two misprints in 100 cells outranks a more similar recomputed table
    assert match_score(0.5, 98, 2) > match_score(0.7, 60, 30)


COUNTS = {(0, 1): (10, 10), (0, 2): (20, 0), (0, 3): (9, 1), (1, 0): (10, 10), (2, 0): (5, 5)}
CANDIDATES = pd.DataFrame({"a": [0, 0, 0, 1, 2], "b": [1, 2, 3, 0, 0],
                           "score": [0.9, 0.6, 0.5, 0.9, 0.4], "rank": [1, 2, 3, 1, 1]})


def stub_collate(a, b):
    return collation(*COUNTS[(a, b)])


def test_candidates_are_ranked_by_match_score_and_cut_at_the_share_of_the_best():
    ranked = ranked_matches(CANDIDATES, stub_collate, min_score=0.0, min_share=0.0)
    assert list(ranked.columns) == MATCH_COLUMNS
    page_0 = ranked[ranked.a == 0]
    # 0-2: 0.6 x 1; 0-3: 0.5 x 0.81; 0-1: 0.9 x 0.25 (the most similar pair, half its cells differ)
    assert page_0.b.tolist() == [2, 3, 1] and page_0["rank"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(page_0.score, [0.6, 0.405, 0.225])
    np.testing.assert_allclose(page_0.similarity, [0.6, 0.5, 0.9])
    assert page_0.cells_agree.tolist() == [20, 9, 10]
    assert page_0.cells_differ.tolist() == [0, 1, 10]
    # each page's list is cut at its own best match score
    kept = ranked_matches(CANDIDATES, stub_collate, min_score=0.0, min_share=0.5)
    assert kept[kept.a == 0].b.tolist() == [2, 3]
    assert kept[kept.a == 1].b.tolist() == [0] and kept[kept.a == 2].b.tolist() == [0]
    # the minimum score applies to the match score, not to the similarity
    kept = ranked_matches(CANDIDATES, stub_collate, min_score=0.3, min_share=0.0)
    assert kept[kept.a == 0].b.tolist() == [2, 3] and (kept.a != 1).all() and (kept.a != 2).all()


def test_the_share_is_of_each_pages_own_best_match():
    # page 0 matches 1 at 0.8 and 2 at 0.3; page 3's best match, 2, also scores 0.3
    candidates = pd.DataFrame({"a": [0, 0, 1, 2, 2, 3], "b": [1, 2, 0, 0, 3, 2],
                               "score": [0.8, 0.3, 0.8, 0.3, 0.3, 0.3]})
    ranked = ranked_matches(candidates, None, min_score=0.1, min_share=0.42)
    assert list(zip(ranked.a, ranked.b, strict=True)) == [(0, 1), (1, 0), (2, 0), (2, 3), (3, 2)]
    # a page whose best score is not positive keeps its matches (min_score below zero)
    opposite = pd.DataFrame({"a": [0, 1], "b": [1, 0], "score": [-1.0, -1.0]})
    assert len(ranked_matches(opposite, None, min_score=-2.0, min_share=0.5)) == 2
    for share in (-0.1, 1.1):
        with pytest.raises(ValueError, match="min_share must be between 0 and 1"):
            ranked_matches(candidates, None, min_score=0.0, min_share=share)


def test_without_a_collation_the_similarity_ranks():
    ranked = ranked_matches(CANDIDATES, None, min_score=0.0, min_share=0.6)
    page_0 = ranked[ranked.a == 0]
    assert page_0.b.tolist() == [1, 2] and page_0.score.tolist() == [0.9, 0.6]
    assert ranked.cells_agree.isna().all() and ranked.cells_differ.isna().all()


def test_match_score_matrix_collates_exactly_the_pairs_that_reach_the_minimum():
    similarity = np.array([[1.0, 0.9, 0.1],
                           [0.9, 1.0, 0.3],
                           [0.1, 0.3, 1.0]])
    asked = []

    def collate(a, b):
        asked.append((a, b))
        return collation(3, 1)

    scores = match_score_matrix(similarity, collate, min_score=0.3)
    assert sorted(asked) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    expected = similarity.copy()
    for a, b in asked:
        expected[a, b] *= 0.75 ** AGREEMENT_POWER
    np.testing.assert_allclose(scores, expected)
    assert similarity[0, 1] == 0.9  # the input is left as it was


def test_a_recomputed_table_falls_behind_a_partial_edition(synthetic_corpus):
    """A table page (perfect digits), its first half as an edition, and a recomputed table that
    prints every row with its last column changed: the recomputed one is the more similar,
    its aligned cells differ, and the match list puts the edition first."""
    truth = synthetic_corpus / "truth"
    digits = read_truth_digits(truth)
    pages = pd.read_csv(truth / "pages.csv").set_index("page_id")
    in_cells = digits[digits.cell_key != ""]
    page = in_cells.groupby("page_id").size().idxmax()
    printed = digits[digits.page_id == page]
    _, row, column = printed.cell_key.str.rsplit(":", n=2, expand=True).T.to_numpy()
    row = pd.to_numeric(pd.Series(row, index=printed.index), errors="coerce")
    column = pd.to_numeric(pd.Series(column, index=printed.index), errors="coerce")
    edition = printed[~(row >= row.median())]
    recomputed = printed.copy()
    in_last = printed.index[column == column.max()]
    last_digit = printed.loc[in_last].groupby("cell_key").position.transform("max")
    changed = last_digit.index[printed.loc[last_digit.index, "position"] == last_digit]
    recomputed.loc[changed, "digit"] = (recomputed.loc[changed, "digit"] + 1) % 10
    ratios = class_height_ratios(digits)
    analyses = [perfect_analysis(frame, pages.loc[page], ratios, DetectorConfig())
                for frame in (printed, recomputed, edition)]
    analyses += [perfect_analysis(digits[digits.page_id == other], pages.loc[other], ratios,
                                  DetectorConfig()) for other in pages.index if other != page]
    scored = score_corpus(np.stack([a.phi for a in analyses]),
                          sparse.vstack([a.cells.counts() for a in analyses], format="csr"),
                          ScoreModel())

    def collate(a, b):
        explanation = explain_match(analyses[a], scored.maps[a], analyses[b], scored.maps[b])
        return collation_of(explanation, analyses[a], analyses[b])

    similarity = (scored.features[:3] @ scored.features[:3].T).toarray()
    candidates = pd.DataFrame({"a": [0, 0], "b": [1, 2], "score": similarity[0, [1, 2]]})
    assert similarity[0, 1] > similarity[0, 2] > 0.4
    ranked = ranked_matches(candidates, collate, min_score=0.2, min_share=0.0)
    assert ranked.b.tolist() == [2, 1]
    recomputed_row, edition_row = ranked.iloc[1], ranked.iloc[0]
    assert edition_row.cells_differ == 0 and edition_row.score == edition_row.similarity
    assert recomputed_row.cells_differ >= len(changed) // 2
    assert recomputed_row.cells_agree > 2 * recomputed_row.cells_differ


def test_explanations_are_redone_when_the_collation_code_changes(monkeypatch):
    """An explanation holds the collation's counts, variants and the match score computed from
    them: the key that decides whether a kept explanation is current covers the collation's
    code as well as the explanation's own."""
    def fingerprint(modules):
        return "|".join(sorted(modules))

    monkeypatch.setattr(similarity, "code_fingerprint", fingerprint)
    options = similarity.SimilarityOptions()
    statistics = {"pages": np.asarray(1)}
    key = similarity._explanation_producer(statistics, options)
    monkeypatch.setattr(similarity, "code_fingerprint",
                        lambda modules: fingerprint(modules).replace(
                            "sphaera_tables.collation", "collation code edited"))
    assert similarity._explanation_producer(statistics, options) != key


def test_both_directions_of_a_pair_are_collated_one_after_the_other():
    """So that both pages are still in memory for the second; each result stays with its row."""
    calls = []

    def collate(a, b):
        calls.append((a, b))
        return collation(10 * a + b + 1, 0)

    candidates = pd.DataFrame({"a": [0, 0, 1, 2, 2], "b": [1, 2, 0, 0, 1],
                               "score": [0.5, 0.6, 0.7, 0.8, 0.9]})
    ranked = ranked_matches(candidates, collate, min_score=0.0, min_share=0.0)
    assert calls == [(0, 1), (1, 0), (0, 2), (2, 0), (2, 1)]
    assert all(ranked.cells_agree == 10 * ranked.a + ranked.b + 1)
