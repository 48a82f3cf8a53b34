"""The results of a corpus run do not depend on the executor: this process, worker processes on
this machine, or a Dask cluster."""

import dataclasses

import pytest

from sphaera_tables.similarity import SimilarityOptions, run_similarity

OUTPUTS = ("features.npy", "matches.csv", "pages.csv")
PAGES_ONLY = SimilarityOptions(explain=False, report=False, networks=False)


def _run(corpus, out, **executor):
    return run_similarity(corpus, out, dataclasses.replace(PAGES_ONLY, **executor))


@pytest.mark.slow
def test_this_process_two_processes_and_a_dask_cluster_write_identical_results(
        tmp_path, synthetic_corpus):
    from dask.distributed import LocalCluster

    local = _run(synthetic_corpus, tmp_path / "local", workers=1)
    processes = _run(synthetic_corpus, tmp_path / "processes", workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask = _run(synthetic_corpus, tmp_path / "dask", scheduler=cluster.scheduler_address)
    for summary in (local, processes, dask):
        assert summary.pages_ok == 16 and summary.pages_reused == 0
        assert summary.matches == local.matches > 0
    for name in OUTPUTS:
        for other in ("processes", "dask"):
            assert (tmp_path / "local" / name).read_bytes() == \
                (tmp_path / other / name).read_bytes(), (other, name)
