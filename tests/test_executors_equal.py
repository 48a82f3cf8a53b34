"""The results of a corpus run do not depend on the executor: this process or a Dask cluster."""

import pytest

from sphaera_tables.similarity import SimilarityOptions, run_similarity

OUTPUTS = ("features.npy", "matches.csv", "pages.csv")


@pytest.mark.slow
def test_local_and_two_worker_dask_runs_write_identical_results(tmp_path, synthetic_corpus):
    local = run_similarity(synthetic_corpus, tmp_path / "local",
                           SimilarityOptions(explain=False, report=False, networks=False))
    dask = run_similarity(synthetic_corpus, tmp_path / "dask",
                          SimilarityOptions(explain=False, report=False, networks=False,
                                            workers=2))
    assert local.pages_ok == dask.pages_ok == 16
    assert local.pages_reused == dask.pages_reused == 0
    assert local.matches == dask.matches > 0
    for name in OUTPUTS:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), \
            name
