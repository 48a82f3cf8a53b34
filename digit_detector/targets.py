"""Training targets: Gaussian blobs at digit centres and the mask of pixels the loss sees."""

from __future__ import annotations

import numpy as np
import torch

RING_WEIGHT = 0.3
"""Loss weight on the thin ring around labelled boxes (1 inside them, 0 further out)."""


def blob_maps(points: torch.Tensor, valid: torch.Tensor, height: int, width: int,
              sigma: float) -> torch.Tensor:
    """Target digit maps (B, 10, height, width): a unit-peak Gaussian per digit centre.

    Parameters
    ----------
    points : (B, K, 3) float, per window up to K digits as (x, y, digit), px of the window.
    valid : (B, K) bool, which of the K slots hold a digit.
    sigma : blob standard deviation, px.

    Blobs of one class add up; at one digit pitch apart (about 4 sigma) they barely overlap.
    """
    ys = torch.arange(height, dtype=torch.float32).view(1, 1, height, 1)
    xs = torch.arange(width, dtype=torch.float32).view(1, 1, 1, width)
    px = points[..., 0].float()[..., None, None]
    py = points[..., 1].float()[..., None, None]
    blobs = torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))
    onehot = torch.nn.functional.one_hot(points[..., 2].long().clamp(0, 9), 10).float()
    onehot = onehot * valid[..., None].float()
    return torch.einsum("bkc,bkhw->bchw", onehot, blobs)


def box_mask(boxes: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """Loss weights (height, width) float32 for labelled boxes (N, 4) as x0, y0, x1, y1 px.

    1 inside each box grown by ``margin`` px, ``RING_WEIGHT`` on a further ring of ``margin``
    px, 0 elsewhere: unlabelled ink far from the labels (other numbers on a page annotated only
    in part) is neither rewarded nor punished.
    """
    mask = np.zeros((height, width), dtype=np.float32)
    for grow, weight in ((2 * margin, RING_WEIGHT), (margin, 1.0)):
        for x0, y0, x1, y1 in boxes:
            ya, yb = max(0, int(np.floor(y0 - grow))), min(height, int(np.ceil(y1 + grow)))
            xa, xb = max(0, int(np.floor(x0 - grow))), min(width, int(np.ceil(x1 + grow)))
            if ya < yb and xa < xb:
                region = mask[ya:yb, xa:xb]
                np.maximum(region, weight, out=region)
    return mask
