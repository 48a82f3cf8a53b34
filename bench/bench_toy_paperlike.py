"""The paper's toy benchmark (section 4), trained as the paper describes: on the similarity only.

No histogram pre-fit: the MLP (60 -> 100 -> 100 -> 50, bias-free ReLU) is trained from scratch on
the squared error of ``<phi(x), phi(x')>`` against the number of matching digit pairs. For each
seed and each training budget, the run's similarity MSE is measured on new pairs and runs above
``FAILED_MSE`` are flagged (and left out of the means); Saliency, Curvature, Hessian x Product and
BiLRP over a gamma sweep are scored by their ACS with the true match matrices. Several budgets
per seed show how the ranking depends on the training error (the paper reports MSE ~1e-3 and
Saliency 0.31, Curvature 0.30, Hessian x Product 0.77, BiLRP 0.89 at gamma = 0.09).

Prints one table per budget (mean and sample standard deviation over the good seeds) in
Markdown, for the README, as soon as that budget is done, and all of them at the end. Failed runs
are scored too (their warning caught) and listed seed by seed beside the good ones, with the gap
BiLRP - HxP, to show how the gap moves with the training error. CPU-heavy: about
(steps / 1000) x 10 s per seed and budget on a quiet core, plus about a minute of scoring.

Run: python3 bench/bench_toy_paperlike.py [--seeds 5] [--steps 20000 10000 5000] [--pairs 200]
                                          [--lr 1e-2] [--shared 0.8]
"""

import argparse
import time
import warnings

import numpy as np

from sphaera_tables.explain.toy import (
    FAILED_MSE,
    FailedTrainingWarning,
    toy_benchmark,
    train_toy_task,
)

PAPER = {"Saliency": 0.31, "Curvature": 0.30, "Hessian x Product": 0.77, "BiLRP gamma=0.09": 0.89}
GAMMAS = (0.0, 0.01, 0.03, 0.09, 0.25, 0.5, 1.0)


def log(message):
    """Progress line with a wall-clock timestamp."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_budget(steps, seeds, args):
    """Train and score each seed for ``steps`` steps; returns a list of (seed, mse, results).

    Failed runs (``mse > FAILED_MSE``) are scored as well, for the per-seed listing; the means
    leave them out.
    """
    runs = []
    for seed in seeds:
        start = time.perf_counter()
        task = train_toy_task(histogram_steps=0, similarity_steps=steps,
                              learning_rate=args.lr, shared=args.shared, seed=seed)
        trained = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FailedTrainingWarning)
            results = toy_benchmark(task, gammas=GAMMAS, n_pairs=args.pairs, seed=seed + 100)
        flag = "FAILED" if task.failed else "ok"
        log(f"  {steps} steps, seed {seed}: MSE {task.mse:.2e} ({flag}), HxP "
            f"{results['Hessian x Product']:.3f}, BiLRP gamma=0.09 "
            f"{results['BiLRP gamma=0.09']:.3f}; train {trained - start:.0f} s, "
            f"score {time.perf_counter() - trained:.0f} s")
        runs.append((seed, task.mse, results))
    return runs


def _mean_std(values):
    values = np.asarray(values, dtype=float)
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0)


def markdown_table(steps, runs):
    """Means over the good seeds per method, then every seed's MSE, HxP, BiLRP and best gamma."""
    good = [(seed, mse, results) for seed, mse, results in runs if mse <= FAILED_MSE]
    mse_mean, mse_std = _mean_std([mse for _, mse, _ in good]) if good else (np.nan, np.nan)
    lines = [f"Training {steps} steps: {len(good)} of {len(runs)} seeds good "
             f"(similarity MSE <= {FAILED_MSE}); their MSE {mse_mean:.1e} +- {mse_std:.1e}", "",
             "| method | ACS mean | std | paper |", "|---|---|---|---|"]
    if not good:
        lines.append("| (every run failed) | | | |")
    else:
        for method in good[0][2]:
            mean, std = _mean_std([results[method] for _, _, results in good])
            paper = PAPER.get(method)
            lines.append(f"| {method} | {mean:.3f} | {std:.3f} | "
                         f"{'' if paper is None else paper} |")
    lines += ["", "| seed | MSE | run | HxP | BiLRP gamma=0.09 | gap | best BiLRP (gamma) |",
              "|---|---|---|---|---|---|---|"]
    for seed, mse, results in runs:
        bilrp = {m: v for m, v in results.items() if m.startswith("BiLRP")}
        best = max(bilrp, key=bilrp.get)
        hxp, b09 = results["Hessian x Product"], results["BiLRP gamma=0.09"]
        lines.append(f"| {seed} | {mse:.1e} | {'ok' if mse <= FAILED_MSE else 'FAILED'} | "
                     f"{hxp:.3f} | {b09:.3f} | {b09 - hxp:+.3f} | {bilrp[best]:.3f} "
                     f"({best.split('=')[1]}) |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, nargs="+", default=[20000, 10000, 5000],
                        help="training budgets (similarity steps), each trained from scratch")
    parser.add_argument("--pairs", type=int, default=200, help="test pairs with >= 1 match")
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="Adam learning rate (train_toy_task uses a tenth of it for the "
                             "similarity phase)")
    parser.add_argument("--shared", type=float, default=0.8,
                        help="weight of the common part of the digit codes (correlation)")
    args = parser.parse_args()
    log(f"arguments: {vars(args)}")
    tables = []
    for steps in args.steps:
        log(f"budget {steps} steps")
        tables.append(markdown_table(steps, run_budget(steps, range(args.seeds), args)))
        print(tables[-1] + "\n", flush=True)
    log("done; all tables:")
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
