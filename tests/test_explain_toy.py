"""A fast version of the paper's toy benchmark: BiLRP recovers the true digit matches."""

import numpy as np
import pytest
import torch

from sphaera_tables.explain.toy import (
    FailedTrainingWarning,
    average_cosine_similarity,
    digit_codes,
    match_count_variance,
    match_matrix,
    sample_sequences,
    toy_benchmark,
    train_toy_task,
)


def test_match_matrix_and_acs():
    truth = match_matrix([1, 2, 3, 1, 5, 6], [1, 0, 0, 0, 0, 2])
    assert truth.sum() == 3 and truth[0, 0] == truth[3, 0] == truth[1, 5] == 1
    assert average_cosine_similarity([2 * truth, -truth], [truth, truth]) == pytest.approx(0.0)
    assert average_cosine_similarity([truth + 0.0], [truth]) == pytest.approx(1.0)


@pytest.mark.slow  # trains a network: 10-30 s alone, much more on a loaded machine
def test_toy_benchmark_ranks_bilrp_above_baselines():
    torch.manual_seed(0)
    task = train_toy_task(histogram_steps=1000, similarity_steps=200)
    assert task.mse < 0.05
    results = toy_benchmark(task, gammas=(0.0, 0.03), n_pairs=30)
    assert results["BiLRP gamma=0"] == pytest.approx(results["Hessian x Product"], abs=1e-12)
    assert results["Saliency"] < 0.45 and results["Curvature"] < 0.45
    assert results["Hessian x Product"] > results["Saliency"] + 0.3
    assert results["BiLRP gamma=0.03"] > results["Hessian x Product"]
    assert np.isfinite(list(results.values())).all()


def test_match_count_variance_is_the_variance_of_the_true_similarity():
    rng = np.random.default_rng(0)
    codes = digit_codes()
    digits_a, _ = sample_sequences(codes, 200_000, rng)
    digits_b, _ = sample_sequences(codes, 200_000, rng)
    counts = (digits_a[:, :, None] == digits_b[:, None, :]).sum(axis=(1, 2))
    assert match_count_variance() == pytest.approx(3.24, rel=1e-12)
    assert counts.var() == pytest.approx(match_count_variance(), rel=0.02)


def test_an_untrained_model_is_flagged_and_scoring_it_warns():
    task = train_toy_task(histogram_steps=0, similarity_steps=0)
    assert task.failed
    with pytest.warns(FailedTrainingWarning, match="training failed"):
        toy_benchmark(task, gammas=(0.0,), n_pairs=2)
