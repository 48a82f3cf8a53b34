"""The paper's toy benchmark (section 4), trained as the paper describes: on the similarity only.

No histogram pre-fit: the MLP (60 -> 100 -> 100 -> 50, bias-free ReLU) is trained from scratch on
the squared error of ``<phi(x), phi(x')>`` against the number of matching digit pairs. For each
seed and each training budget, the run's similarity MSE is measured on new pairs and runs above
``FAILED_MSE`` are flagged (and left out of the means); Saliency, Curvature, Hessian x Product and
BiLRP over a gamma sweep are scored by their ACS with the true match matrices. Several budgets
per seed show how the ranking depends on the training error (the paper reports MSE ~1e-3 and
Saliency 0.31, Curvature 0.30, Hessian x Product 0.77, BiLRP 0.89 at gamma = 0.09).

Prints one table per budget (mean and standard deviation over the good seeds) in Markdown, for
the README. CPU-heavy: about (steps / 1000) x 10 s per seed and budget on a quiet core.

Run: python3 bench/bench_toy_paperlike.py [--seeds 5] [--steps 5000 20000] [--pairs 200]
                                          [--lr 1e-2] [--shared 0.8]
"""

import argparse
import time

import numpy as np

from sphaera_tables.explain.toy import FAILED_MSE, toy_benchmark, train_toy_task

PAPER = {"Saliency": 0.31, "Curvature": 0.30, "Hessian x Product": 0.77, "BiLRP gamma=0.09": 0.89}
GAMMAS = (0.0, 0.01, 0.03, 0.09, 0.25, 0.5, 1.0)


def run_budget(steps, seeds, args):
    """ACS per method for each seed trained ``steps`` steps; returns (mse per seed, results)."""
    mses, results = [], []
    for seed in seeds:
        start = time.perf_counter()
        task = train_toy_task(histogram_steps=0, similarity_steps=steps,
                              learning_rate=args.lr, shared=args.shared, seed=seed)
        mses.append(task.mse)
        flag = "FAILED" if task.failed else "ok"
        print(f"  seed {seed}: MSE {task.mse:.2e} ({flag}), {time.perf_counter() - start:.0f} s",
              flush=True)
        if not task.failed:
            results.append(toy_benchmark(task, gammas=GAMMAS, n_pairs=args.pairs,
                                         seed=seed + 100))
    return mses, results


def markdown_table(steps, mses, results):
    good = [m for m in mses if m <= FAILED_MSE]
    lines = [f"Training {steps} steps: MSE per seed "
             + ", ".join(f"{m:.1e}" for m in mses)
             + f" ({len(mses) - len(good)} failed, threshold {FAILED_MSE})", "",
             "| method | ACS mean | std | paper |", "|---|---|---|---|"]
    if not results:
        return "\n".join(lines + ["| (every run failed) | | | |"])
    for method in results[0]:
        values = np.array([r[method] for r in results])
        paper = PAPER.get(method)
        lines.append(f"| {method} | {values.mean():.3f} | {values.std(ddof=0):.3f} | "
                     f"{'' if paper is None else paper} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs="+", default=[5000, 20000],
                        help="training budgets (similarity steps), each trained from scratch")
    parser.add_argument("--pairs", type=int, default=200, help="test pairs with >= 1 match")
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="Adam learning rate (train_toy_task uses a tenth of it for the "
                             "similarity phase)")
    parser.add_argument("--shared", type=float, default=0.8,
                        help="weight of the common part of the digit codes (correlation)")
    args = parser.parse_args()
    tables = []
    for steps in args.steps:
        print(f"budget {steps} steps", flush=True)
        mses, results = run_budget(steps, range(args.seeds), args)
        tables.append(markdown_table(steps, mses, results))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
