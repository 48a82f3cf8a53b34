"""The collation step of a corpus run: milliseconds per candidate pair.

Collates the candidate pairs of a results folder (its matches.csv, cached page analyses) twice
in this process: each pair explained from its two pages' analyses (``explain_match``, the
pages' mapped factors made per pair), and through ``pair_collator`` (each page's mapped factors
made once and kept for its next pairs, as ``tables similarity`` does). Both give the same
counts (checked).

Run: python3 bench/bench_collation.py RESULTS [--pairs 600]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from sphaera_tables.number_links import collation_of, explain_match
from sphaera_tables.page_task import cached_analysis_loader
from sphaera_tables.ranking import pair_collator
from sphaera_tables.scoring import score_corpus
from sphaera_tables.similarity import results_scoring


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--pairs", type=int, default=600)
    args = parser.parse_args()
    pages = pd.read_csv(args.results / "pages.csv")
    ids = pages.loc[pages.status == "ok", "page_id"].tolist()
    load = cached_analysis_loader(args.results)
    analyses = [load(page_id) for page_id in ids]
    _, model = results_scoring(args.results)
    scored = score_corpus(np.stack([a.phi for a in analyses]),
                          sparse.vstack([a.cells.counts() for a in analyses], format="csr"), model)
    row = {page_id: i for i, page_id in enumerate(ids)}
    matches = pd.read_csv(args.results / "matches.csv")
    pairs = [(row[a], row[b]) for a, b in zip(matches.page_a, matches.page_b, strict=True)]
    pairs = pairs[: args.pairs]

    def per_pair():
        return [collation_of(explain_match(analyses[a], scored.maps[a], analyses[b],
                                           scored.maps[b]), analyses[a], analyses[b])
                for a, b in pairs]

    def collator():
        collate = pair_collator(analyses.__getitem__, scored.maps)
        return [collate(a, b) for a, b in pairs]

    timings = {}
    for name, run in (("per pair", per_pair), ("pair_collator", collator),
                      ("per pair ", per_pair), ("pair_collator ", collator)):
        start = time.perf_counter()
        result = run()
        timings.setdefault(name.strip(), []).append(time.perf_counter() - start)
        counts = [(c.cells_agree, c.cells_differ) for c in result]
    reference = [(c.cells_agree, c.cells_differ) for c in per_pair()]
    assert counts == reference
    print(f"{len(pairs)} pairs of {args.results} (analyses in memory):")
    for name, seconds in timings.items():
        print(f"  {name:14s} {1000 * min(seconds) / len(pairs):6.1f} ms per pair (best of 2)")
    print(f"  ratio {min(timings['per pair']) / min(timings['pair_collator']):.2f}x")


if __name__ == "__main__":
    main()
