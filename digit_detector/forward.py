"""The detector's forward pass without gradients, as fast as torch runs it.

On the CPU the activations stay in oneDNN's own layout from the first convolution to the last,
which is what ``detector(batch)`` computes layer by layer with a reorder into and out of that
layout around every convolution: the same kernels, bit-identical maps, about half the time.
Elsewhere (CUDA, float64, a network that is not plain convolutions and ReLUs, no oneDNN) the
module runs as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from digit_detector.model import DigitDetector


def detector_maps(detector: DigitDetector, batch: torch.Tensor) -> torch.Tensor:
    """``detector(batch)`` without gradients: digit maps (N, 10, h, w) of prepared ink
    (N, 1, h, w)."""
    with torch.no_grad():
        if not _runs_blocked(detector, batch):
            return detector(batch)
        hidden = batch.to_mkldnn()
        for layer in detector.layers:
            if isinstance(layer, nn.Conv2d):
                hidden = torch.mkldnn_convolution(
                    hidden, layer.weight.detach().to_mkldnn(), None, layer.padding,
                    layer.stride, layer.dilation, layer.groups)
            else:
                hidden = torch.relu_(hidden)
        return hidden.to_dense()


def _runs_blocked(detector: DigitDetector, batch: torch.Tensor) -> bool:
    """Whether :func:`detector_maps` can keep ``batch`` in oneDNN's layout: float32 on the
    CPU with oneDNN present, and a network of plain convolutions and ReLUs."""
    return (batch.device.type == "cpu" and batch.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and all(isinstance(layer, (nn.Conv2d, nn.ReLU)) for layer in detector.layers)
            and all(layer.weight.dtype == torch.float32 for layer in detector.layers
                    if isinstance(layer, nn.Conv2d)))
