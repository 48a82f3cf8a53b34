"""Scores of ``tables evaluate matches``: retrieval, and the perfect-digit reference."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sphaera_tables.cli import main
from sphaera_tables.evaluation import page_contents, retrieval_scores
from sphaera_tables.reference import (
    TrueBigrams,
    instance_faithfulness,
    perfect_digit_maps,
    read_truth_digits,
    true_page_bigrams,
)
from sphaera_tables.similarity import SimilarityOptions, run_similarity


def test_retrieval_scores_known_answer():
    # a and b print one table; c a table of the same type with other numbers; d something else
    ids = ["a", "b", "c", "d"]
    contents = {"a": {"t1:0"}, "b": {"t1:0", "t1:1"}, "c": {"t2:0"}, "d": {"t3:0"}}
    types = {"a": {"sine"}, "b": {"sine"}, "c": {"sine"}, "d": {"chord"}}
    similarity = np.array([[1.0, 0.5, 0.8, 0.1],
                           [0.5, 1.0, 0.2, 0.3],
                           [0.8, 0.2, 1.0, 0.0],
                           [0.1, 0.3, 0.0, 1.0]])
    scores = retrieval_scores(similarity, ids, contents, types)
    # query a ranks c, b, d: AP 1/2, miss at 1; query b ranks a first: AP 1, hit
    assert scores.queries == 2
    assert scores.mean_average_precision == pytest.approx(0.75)
    assert scores.precision_at_1 == pytest.approx(0.5)
    # every true match outranks every same-type page for b only
    assert scores.same_type_ranked_below == pytest.approx(0.5)
    assert scores.mean_score_true_match == pytest.approx(0.5)
    assert scores.mean_score_same_type_other_numbers == pytest.approx(0.5)


def test_instance_faithfulness_known_answer():
    # a bigram printed twice on both pages links each copy to both: half of it is right
    identity = np.eye(100)
    page = TrueBigrams(np.array([15, 15, 23]), np.array(["r1", "r2", "r3"], dtype=object))
    assert instance_faithfulness(page, identity, page, identity) == pytest.approx(3 / 5)
    other = TrueBigrams(np.array([15, 23]), np.array(["x", "y"], dtype=object))
    assert instance_faithfulness(page, identity, other, identity) == 0.0
    nothing = TrueBigrams(np.array([42]), np.array(["r1"], dtype=object))
    assert np.isnan(instance_faithfulness(page, identity, nothing, identity))


def test_instance_relevance_conserves_and_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    page_a = TrueBigrams(rng.integers(0, 100, 30), rng.choice(["p", "q", "r", ""], 30))
    page_b = TrueBigrams(rng.integers(0, 100, 25), rng.choice(["p", "q", "s", ""], 25))
    map_a, map_b = rng.normal(size=(2, 100, 100))
    positive = same = total = 0.0
    for (i, m), (j, n) in itertools.product(enumerate(page_a.bigrams), enumerate(page_b.bigrams)):
        relevance = float(map_a[:, m] @ map_b[:, n])
        total += relevance
        if relevance > 0:
            positive += relevance
            if page_a.cells[i] == page_b.cells[j] != "":
                same += relevance
    score = (map_a @ page_a.counts) @ (map_b @ page_b.counts)
    assert total == pytest.approx(score)
    assert instance_faithfulness(page_a, map_a, page_b, map_b) == pytest.approx(same / positive)


def test_perfect_digit_features_find_the_copies_of_a_table(synthetic_corpus):
    truth = synthetic_corpus / "truth"
    ids = pd.read_csv(truth / "pages.csv").page_id.tolist()
    digits = read_truth_digits(truth)
    pages = true_page_bigrams(digits, ids)
    for page_id in ids:  # counts agree with a plain walk over the printed numbers
        expected = np.zeros(100)
        for _, number in digits[digits.page_id == page_id].groupby("number_id"):
            sequence = number.sort_values("position").digit.tolist()
            for first, second in itertools.pairwise(sequence):
                expected[10 * first + second] += 1
        np.testing.assert_array_equal(pages[page_id].counts, expected)
    maps = perfect_digit_maps(pages, mass_floor=8.0, norm_floor=0.03)
    features = np.stack([maps[p] @ pages[p].counts for p in ids])
    contents, types = page_contents(truth)
    scores = retrieval_scores(features @ features.T, ids, contents, types)
    assert scores.queries >= 2
    assert scores.mean_average_precision > 0.8
    assert scores.mean_score_true_match > 2 * scores.mean_score_same_type_other_numbers


def test_evaluate_matches_scores_the_run_and_its_perfect_digit_reference(synthetic_corpus,
                                                                         tmp_path):
    out = tmp_path / "results"
    run_similarity(synthetic_corpus, out,
                   SimilarityOptions(min_score=0.0, top_k=3, networks=False, report=False))
    result = CliRunner().invoke(main, ["evaluate", "matches", str(out), "--truth",
                                       str(synthetic_corpus / "truth"), "--no-baseline",
                                       "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert scores["pages"] == 16 and scores["baseline"] is None
    bigram, perfect = scores["bigram"], scores["perfect_digits"]
    assert perfect["queries"] == bigram["queries"] > 0
    assert perfect["mean_average_precision"] >= bigram["mean_average_precision"]
    assert scores["explained_matches"] > 0
    assert 0 < scores["faithfulness"] <= 1 and 0 < scores["faithfulness_bound"] <= 1
