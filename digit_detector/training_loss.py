"""The training loss of the detector and what is measured with it.

The network learns by masked mean squared error to draw a unit Gaussian blob at every digit
centre (:func:`masked_mse`, blob pixels weighted up). Because the network is bias-free, its
output scales with its last layer: validation measures the loss at the output gain that fits
best (:func:`calibrated_loss`), and the kept weights carry that gain (:func:`apply_output_gain`).
:func:`hard_windows` finds where given weights err most on whole training images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from digit_detector.model import DigitDetector
from digit_detector.prepare import cell_sums
from digit_detector.targets import blob_maps
from digit_detector.training_data import (
    CROP,
    Source,
    Windows,
    cell_centres,
    centre_crop,
    concatenate,
)

HARD_PER_IMAGE = 8
"""Hard windows cut from each searched image: its CROP/2-sized cells of largest loss."""
BLOB_WEIGHT = 2.0
"""Extra loss weight on the blobs (weight 1 + BLOB_WEIGHT x target), so that the few blob
pixels are not drowned by the background."""


def masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Squared error weighted by :func:`loss_weights`, normalised by the sum of the mask."""
    return ((output - target) ** 2 * loss_weights(target, mask)).sum() / mask.sum().clamp_min(1.0)


def loss_weights(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-pixel loss weights: ``mask`` (..., 1, h, w) times ``1 + BLOB_WEIGHT * target``."""
    return mask * (1 + BLOB_WEIGHT * target)


def calibrated_loss(detector: DigitDetector, windows: Windows,
                    sigma: float) -> tuple[float, float]:
    """Masked MSE (as :func:`masked_mse`) over un-augmented windows (centre crops) with the
    output times the gain that minimises it, and that gain.

    Training on re-inked windows (lighter and fainter than prepared pages) leaves the output on
    clean pages too strong by a factor that drifts from epoch to epoch; the plain loss then
    mostly measures that factor. The gain is ``sum(w o t) / sum(w o^2)`` for weights ``w``,
    outputs ``o`` and targets ``t``; (nan, 1) without windows.
    """
    if len(windows) == 0:
        return math.nan, 1.0
    detector.eval()
    sums = torch.zeros(4, dtype=torch.float64)  # w o t, w o o, w t t, mask
    with torch.no_grad():
        for start in range(0, len(windows), 64):
            batch = windows.subset(torch.arange(start, min(start + 64, len(windows))))
            images, masks = batch.tensors()
            images, masks, targets = centre_crop(images, masks, batch.points, batch.valid, sigma)
            output = detector(images)
            weight = loss_weights(targets, masks)
            sums += torch.stack([(weight * output * targets).sum(), (weight * output**2).sum(),
                                 (weight * targets**2).sum(), masks.sum()]).double()
    detector.train()
    cross, output_square, target_square, mask_total = sums.tolist()
    gain = cross / output_square if output_square > 0 else 1.0
    loss = (target_square - gain * cross) / max(mask_total, 1.0)
    return loss, gain


def apply_output_gain(detector: DigitDetector, gain: float) -> None:
    """Multiply the output of the bias-free ``detector`` by ``gain`` > 0 (its last layer)."""
    last = [m for m in detector.layers if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.mul_(gain)


def hard_windows(detector: DigitDetector, sources: Sequence[Source]) -> Windows:
    """The windows of ``sources`` where ``detector`` errs most: per image the HARD_PER_IMAGE
    CROP/2-sized cells of largest masked squared error (weighted by :func:`loss_weights`)."""
    sigma = detector.config.blob_sigma_px
    groups = []
    detector.eval()
    with torch.no_grad():
        for source in sources:
            output = detector(torch.from_numpy(source.ink)[None, None])[0]
            target = page_targets(source.points, *source.ink.shape, sigma)
            weight = loss_weights(target, torch.from_numpy(source.mask)[None])
            error = ((output - target) ** 2 * weight).sum(0)
            cells = cell_sums(error.numpy(), CROP // 2)
            worst = np.argsort(cells.ravel())[::-1][:HARD_PER_IMAGE]
            groups.append(source.windows(cell_centres(worst, cells.shape[1])))
    detector.train()
    return concatenate(groups)


def page_targets(points: np.ndarray, height: int, width: int, sigma: float,
                 tile: int = 64) -> torch.Tensor:
    """Target maps (10, height, width) of a whole image with digit centres ``points`` (N, 3),
    drawn tile by tile with :func:`blob_maps` (blobs cut at 4 sigma) to bound memory."""
    target = torch.zeros((10, height, width))
    reach = 4 * sigma
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            near = points[(points[:, 0] > x0 - reach) & (points[:, 0] < x0 + tile + reach)
                          & (points[:, 1] > y0 - reach) & (points[:, 1] < y0 + tile + reach)]
            if len(near) == 0:
                continue
            local = torch.from_numpy((near - [x0, y0, 0]).astype(np.float32))[None]
            h, w = min(tile, height - y0), min(tile, width - x0)
            valid = torch.ones(local.shape[:2], dtype=torch.bool)
            target[:, y0 : y0 + h, x0 : x0 + w] = blob_maps(local, valid, h, w, sigma)[0]
    return target
