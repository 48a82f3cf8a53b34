"""BiLRP engine against the published approach, on a table-like model (figures, no asserts).

Model: a bias-free conv/ReLU detector (1 -> 8 -> 16 -> 10 maps, same size) and a bigram head
(min of map j and map k shifted right, max over shifts, sum over pixels) -> 100 dims, LRP-gamma
0.5 on every conv, explanations pooled on 8 x 8 super-pixels.

Published approach: for every pair and every embedding dimension, a separate forward and LRP
pass on each of the two images (2h passes per pair, no batching, no cache), pooled, outer
products summed. Engine: pooled factors once per image (one forward, batched seeds, zero
dimensions skipped), then one matrix product per pair. Both run here, in this process, on the
same model and inputs; results are compared. Times are CPU seconds of this process on one
thread (``time.process_time``), steadier than wall time on a shared machine.

Run: python3 bench/bench_bilrp.py [--quick]
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sphaera_tables.explain import (
    Composite,
    Factors,
    Gamma,
    bilrp,
    grid_labels,
    pool,
    pooled_lrp_factors,
)

SHIFTS = (2, 3)


class BigramHead(nn.Module):
    """(B, 10, H, W) maps -> (B, 100): sum over pixels of max over shifts of min(a_j, a_k)."""

    def forward(self, maps):
        batch, n = maps.shape[:2]
        shifted = torch.stack(
            [nn.functional.pad(maps, (t, 0))[..., : maps.shape[-1]] for t in SHIFTS], dim=2)
        pairs = torch.minimum(maps[:, :, None, None], shifted[:, None])
        return pairs.amax(dim=3).sum(dim=(-1, -2)).reshape(batch, n * n)


def table_model(seed=0):
    torch.manual_seed(seed)
    detector = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(8, 16, 5, padding=2, bias=False), nn.ReLU(),
        nn.Conv2d(16, 10, 1, bias=False), nn.ReLU(),
    )
    detector[0].weight.data += 0.05
    detector[2].weight.data += 0.02
    detector[4].weight.data -= 0.015  # sparser maps: some bigrams never occur on a page
    return nn.Sequential(detector, BigramHead())


def pages(n, shape, seed=0):
    """Sparse random 'ink' images in [0, 1], shape (n, 1, H, W)."""
    generator = torch.Generator().manual_seed(seed)
    ink = (torch.rand((n, 1) + shape, generator=generator) > 0.93).float()
    return nn.functional.avg_pool2d(ink, 3, stride=1, padding=1) * 3


def published_pair(model, composite, x_a, x_b, labels, h):
    """2h separate forward + LRP passes, pooled, outer products summed."""
    relevance = 0
    for m in range(h):
        factors = []
        for x in (x_a, x_b):
            leaf = x.clone().requires_grad_(True)
            with composite.attached(model):
                output = model(leaf)
            (gradient,) = torch.autograd.grad(output[0, m], leaf)
            single = Factors(values=(leaf * gradient).detach().numpy(), phi=np.zeros(1))
            factors.append(pool(single, labels).values[0])
        relevance = relevance + np.outer(factors[0], factors[1])
    return relevance


def engine_pairs(model, composite, images, pairs, labels, **options):
    cache = {}
    explanations = []
    for a, b in pairs:
        for index in (a, b):
            if index not in cache:
                cache[index] = pooled_lrp_factors(model, images[index:index + 1], labels,
                                                  composite, **options)
        explanations.append(bilrp(cache[a], cache[b]))
    return explanations


def timed(function, *args, **kwargs):
    start = time.process_time()
    result = function(*args, **kwargs)
    return time.process_time() - start, result


def peak_rss_mb(function):
    """Peak resident memory increase (MiB) while ``function`` runs (Linux only)."""
    status = Path("/proc/self/status")
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib(status, "VmRSS:")
    function()
    return (_status_kib(status, "VmHWM:") - before) / 1024


def _status_kib(status, key):
    line = next(line for line in status.read_text().splitlines() if line.startswith(key))
    return int(line.split()[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs for the baseline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = (32, 48)
    model, composite = table_model(), Composite({nn.Conv2d: Gamma(0.5)})
    images = pages(100, shape)
    labels = grid_labels(shape, 8)
    h = 100
    rng = np.random.default_rng(0)
    all_pairs = [tuple(rng.choice(100, 2, replace=False)) for _ in range(1000)]
    with torch.no_grad():
        nonzero = (model(images) != 0).sum(dim=1).float()
    print(f"model: 10 maps -> h = {h}; page {shape[0]} x {shape[1]} px; non-zero dims per page: "
          f"mean {nonzero.mean():.1f} of {h}; threads {torch.get_num_threads()}")

    print("\nstrategies (one page, pooled on 8 x 8 cells; best of 3 after a warm-up):")
    for strategy in ("vmap", "batch", "loop"):
        runs = [timed(pooled_lrp_factors, model, images[:1], labels, composite,
                      strategy=strategy)[0] for _ in range(4)]
        print(f"  {strategy:6s} {min(runs[1:]):7.3f} s")

    n_baseline = 2 if args.quick else 10
    seconds_base, reference = timed(
        lambda: [published_pair(model, composite, images[a:a + 1], images[b:b + 1], labels, h)
                 for a, b in all_pairs[:n_baseline]])
    per_pair = seconds_base / n_baseline
    seconds_one, _ = timed(published_pair, model, composite, images[all_pairs[0][0]:][:1],
                           images[all_pairs[0][1]:][:1], labels, h)
    print(f"\npublished approach: {per_pair:.3f} s per pair (mean of {n_baseline} pairs; "
          f"1 pair alone {seconds_one:.3f} s)")
    ours = engine_pairs(model, composite, images, all_pairs[:n_baseline], labels)
    difference = max(np.abs(e.relevance - r).max() / np.abs(r).max()
                     for e, r in zip(ours, reference, strict=True))
    print(f"max relative difference engine vs published on those pairs: {difference:.2e}")
    print(f"max conservation residual |sum R - y| / |y|: {max(e.residual for e in ours):.2e} "
          f"(y from {min(e.y for e in ours):.3g} to {max(e.y for e in ours):.3g})")

    print("\n pairs   published (s)   engine (s)   ratio   images explained")
    for n in (1, 100, 1000):
        pairs = all_pairs[:n]
        seconds, _ = timed(engine_pairs, model, composite, images, pairs, labels)
        baseline = seconds_one if n == 1 else per_pair * n
        note = "" if n == 1 else " (extrapolated: linear in pairs)"
        n_images = len({i for pair in pairs for i in pair})
        print(f" {n:5d}   {baseline:12.2f}   {seconds:10.3f}   {baseline / seconds:6.1f}x"
              f"   {n_images:4d}{note}")

    big = pages(1, (192, 288), seed=1)
    big_labels = grid_labels((192, 288), 16)
    print("\npeak memory of pooled factors on a 192 x 288 page (resident set increase):")
    for budget in (256 << 20, 1 << 30, 2 << 30):
        megabytes = peak_rss_mb(lambda budget=budget: pooled_lrp_factors(
            model, big, big_labels, composite, memory_budget_bytes=budget))
        print(f"  budget {budget >> 20:4d} MiB -> peak +{megabytes:7.1f} MiB")


if __name__ == "__main__":
    main()
