"""The paper's toy benchmark (section 4): ACS of four explanation methods against the truth.

Trains the 6-digit MLP (60 -> 100 -> 100 -> 50, bias-free ReLU) so that the dot product of two
embeddings counts the matching digits, then scores Saliency, Curvature, Hessian x Product and
BiLRP (gamma sweep) by their average cosine similarity with the true 6 x 6 match matrices.
Paper: Saliency 0.31, Curvature 0.30, Hessian x Product 0.77, BiLRP 0.89 (gamma = 0.09).

Run: python3 bench/bench_toy_acs.py [--shared 0.8] [--pairs 500] [--seed 0]
"""

import argparse
import time

import numpy as np

from sphaera_tables.explain.toy import digit_codes, toy_benchmark, train_toy_task

PAPER = {"Saliency": 0.31, "Curvature": 0.30, "Hessian x Product": 0.77, "BiLRP gamma=0.09": 0.89}
GAMMAS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.09, 0.15, 0.25, 0.5, 1.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=float, default=0.8,
                        help="weight of the common part of the digit codes (correlation)")
    parser.add_argument("--pairs", type=int, default=500, help="test pairs with >= 1 match")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    codes = digit_codes(args.seed, args.shared)
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    cosines = (unit @ unit.T)[~np.eye(len(codes), dtype=bool)]
    print(f"digit codes: mean cosine between different digits {cosines.mean():.3f}")
    start = time.perf_counter()
    task = train_toy_task(shared=args.shared, seed=args.seed)
    print(f"training: similarity MSE {task.mse:.2e} on 4096 new pairs "
          f"({time.perf_counter() - start:.0f} s; paper: ~1e-3)")
    start = time.perf_counter()
    results = toy_benchmark(task, gammas=GAMMAS, n_pairs=args.pairs, seed=args.seed + 100)
    print(f"explanations of {args.pairs} pairs: {time.perf_counter() - start:.0f} s\n")
    print(f"{'method':22s}  ACS     paper")
    for method, acs in results.items():
        paper = PAPER.get(method)
        print(f"{method:22s}  {acs:.3f}   {'' if paper is None else f'{paper:.2f}'}")
    best = max((m for m in results if m.startswith("BiLRP")), key=results.get)
    baseline = results["Hessian x Product"]
    print(f"\nbest BiLRP: {best} ({results[best]:.3f}); Hessian x Product {baseline:.3f}; "
          f"gain {results[best] - baseline:+.3f}")


if __name__ == "__main__":
    main()
