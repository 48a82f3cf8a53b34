"""Augmentation of training windows: random warps and re-inking, and decoys.

Windows are warped on the fly (affine, with a digit-size change of 0.7-1.4x, slant and width of
other typefaces), re-inked (ink weight and contrast, spread, erosion, blur, noise) and cropped;
decoys show digits far too small, far too large or turned by 90 degrees, with an empty target.
The detector thus tolerates the error of the cheap scale estimate yet stays silent at wrong
scales and rotations. All randomness comes from the given torch generator.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from digit_detector.training_data import WINDOW, Windows, centre_crop

SCALE_JITTER = (0.7, 1.4)
"""Range of the random digit-size change of a training window: the detector tolerates a
working scale off by this much, so the scale choice need not be exact."""
SHEAR = 0.3
"""Largest random slant of a training window (horizontal shift per px of height): upright
type made italic and italic made upright or reverse-slanted, so that the detector reads
typefaces it was not trained on."""
WIDTH_JITTER = 1.25
"""Largest random widening (and, inverted, narrowing) of the digits of a training window:
condensed and wide typefaces."""
DECOY_SCALES = ((0.4, 0.55), (1.9, 2.6))
"""Digit-size changes of decoy windows: far outside SCALE_JITTER on either side."""


def augment(batch: Windows, sigma: float, generator: torch.Generator):
    """Randomly warped and re-inked CROP x CROP windows with their targets and masks.

    Affine: rotation +-4 deg, digit size times ``SCALE_JITTER`` (log-uniform), slant
    (``SHEAR``) and width (``WIDTH_JITTER``) of another typeface, shift +-3 px. Ink: see
    :func:`_reink`.
    """
    low, high = SCALE_JITTER
    scale = torch.exp(math.log(low) + math.log(high / low) * torch.rand(len(batch),
                                                                        generator=generator))
    return _warp(batch, scale, sigma, generator)


def decoys(batch: Windows, generator: torch.Generator):
    """Windows the detector must not answer: all-zero targets, shape as :func:`augment`.

    Half of them show the digits at a wrong size (one of ``DECOY_SCALES``), half turned by
    +-90 degrees at a right size; ink is re-inked as in :func:`augment`.
    """
    n = len(batch)
    turned = torch.rand(n, generator=generator) < 0.5
    ranges = torch.tensor(DECOY_SCALES).log()
    side = torch.randint(len(DECOY_SCALES), (n,), generator=generator)
    low, high = ranges[side, 0], ranges[side, 1]
    wrong = torch.exp(low + (high - low) * torch.rand(n, generator=generator))
    scale = torch.where(turned, torch.ones(n), wrong)
    images, masks, targets = _warp(batch, scale, 1.0, generator)
    turns = torch.where(torch.rand(n, generator=generator) < 0.5, 1, -1)
    for i in torch.nonzero(turned).flatten().tolist():
        images[i] = torch.rot90(images[i], int(turns[i]), dims=(1, 2))
        masks[i] = torch.rot90(masks[i], int(turns[i]), dims=(1, 2))
    return images, masks, torch.zeros_like(targets)


def _warp(batch: Windows, scale: torch.Tensor, sigma: float, generator: torch.Generator):
    """Warp (digit size times ``scale`` (N,), small rotation, shear and shift), re-ink and
    crop a batch; targets follow the moved digit centres."""
    n = len(batch)

    def uniform(low, high, size=(n,)):
        return low + (high - low) * torch.rand(size, generator=generator)

    angle = torch.deg2rad(uniform(-4, 4))
    shift = uniform(-3, 3, (n, 2))
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shaping = torch.eye(2).repeat(n, 1, 1)
    shaping[:, 0, 1] = uniform(-SHEAR, SHEAR)
    shaping[:, 0, 0] = torch.exp(uniform(-math.log(WIDTH_JITTER), math.log(WIDTH_JITTER)))
    matrix = rotation @ shaping / scale[:, None, None]
    theta = torch.cat([matrix, (2 * shift / WINDOW)[..., None]], dim=2)
    images, masks = batch.tensors()
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="nearest", align_corners=False)
    centre = (WINDOW - 1) / 2
    relative = batch.points[..., :2] - centre - shift[:, None, :]
    moved = torch.linalg.solve(matrix[:, None], relative[..., None])[..., 0] + centre
    points = torch.cat([moved, batch.points[..., 2:]], dim=-1)
    images = _reink(images, generator)
    return centre_crop(images, masks, points, batch.valid, sigma)


def _reink(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random stroke weight (gamma 0.5-2), contrast 0.5-1, ink spread (squeeze) or erosion
    (broken strokes), blur and noise; values stay in [0, 1]."""
    n = images.shape[0]

    def uniform(low, high):
        return (low + (high - low) * torch.rand((n, 1, 1, 1), generator=generator))

    def chance(p):
        return (torch.rand((n, 1, 1, 1), generator=generator) < p).float()

    images = images.clamp(0, 1) ** uniform(0.5, 2.0) * uniform(0.5, 1.0)
    spread = F.max_pool2d(images, 3, stride=1, padding=1)
    images = torch.maximum(images, spread * uniform(0.0, 0.6) * chance(0.3))
    eroded = -F.max_pool2d(-images, 2, stride=1, padding=1)[..., 1:, 1:]
    erode = chance(0.15) * uniform(0.3, 1.0)
    images = images * (1 - erode) + eroded * erode
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    blur = chance(0.4) * uniform(0.3, 1.0)
    images = images * (1 - blur) + blurred * blur
    noise = torch.randn(images.shape, generator=generator) * uniform(0.0, 0.12) * chance(0.5)
    return (images + noise).clamp(0, 1)

