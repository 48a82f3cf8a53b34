"""The detector's forward pass without gradients, as fast as torch runs it.

On the CPU each convolution and the ReLU after it run as one oneDNN primitive
(``mkldnn::_convolution_pointwise``, the fused kernel torch's own compiler emits) on
channels-last activations, with the weights reordered into oneDNN's layout once per detector.
Against ``detector(batch)`` layer by layer this saves a reorder into and out of that layout
around every convolution, a reorder of every weight at every call and a pass over memory for
every ReLU: on this 2-core machine a 542 x 542 px input took 47 against 62 ms, 10 crops of 80
px 11 against 13 ms (median of 15, one process), and the maps of a page 20 % less time
(``bench/bench_page_step.py``). The maps agree with the module's to float rounding (within
1e-6 of maps peaking at 1: the sums run in another order).
Elsewhere (CUDA, float64, a network that is not plain convolutions and ReLUs, a torch without
oneDNN or without the fused operator) the module runs as it is.
"""

from __future__ import annotations

import functools
import weakref

import torch
from torch import nn

from digit_detector.model import DigitDetector

PACKED_FOR_SIDE = 512
"""The square input side (px) oneDNN is told when the weights are reordered: a hint for its
choice of layout, which inputs of every size then share (packed for 64 to 1024 px, a page's
maps took the same time)."""

_packed: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per detector: its convolutions' weights reordered for oneDNN, and the weights' identity
and version they were made from (:func:`_packed_layers`)."""


def detector_maps(detector: DigitDetector, batch: torch.Tensor) -> torch.Tensor:
    """``detector(batch)`` without gradients: digit maps (N, 10, h, w) of prepared ink
    (N, 1, h, w)."""
    with torch.no_grad():
        if not _runs_fused(detector, batch):
            return detector(batch)
        hidden = batch.contiguous(memory_format=torch.channels_last)
        for conv, weight, activation in _packed_layers(detector):
            hidden = torch.ops.mkldnn._convolution_pointwise(
                hidden, weight, conv.bias, list(conv.padding), list(conv.stride),
                list(conv.dilation), conv.groups, activation, [], "")
        return hidden.contiguous()


def _packed_layers(detector: DigitDetector) -> list[tuple[nn.Conv2d, torch.Tensor, str]]:
    """``(convolution, packed weight, "relu" or "none")`` for each convolution of the detector,
    "relu" when a ReLU follows it. Packed once, and again whenever a weight is replaced or
    changed in place (training), which its identity and version counter tell (the cache holds
    the weights it was made from, so no new tensor can take an old one's identity)."""
    layers = list(detector.layers)
    convolutions = [(i, layer) for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    made_from = [(conv.weight, conv.weight._version) for _, conv in convolutions]
    cached = _packed.get(detector)
    if cached is None or not _same_weights(cached[0], made_from):
        packed = []
        for i, conv in convolutions:
            follows = layers[i + 1] if i + 1 < len(layers) else None
            weight = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight.detach(), list(conv.padding), list(conv.stride), list(conv.dilation),
                conv.groups, [1, conv.in_channels, PACKED_FOR_SIDE, PACKED_FOR_SIDE])
            packed.append((conv, weight, "relu" if isinstance(follows, nn.ReLU) else "none"))
        cached = _packed[detector] = (made_from, packed)
    return cached[1]


def _same_weights(before: list, now: list) -> bool:
    """Whether two lists of ``(weight, version)`` name the same tensors at the same versions."""
    return len(before) == len(now) and all(
        old is new and old_version == new_version
        for (old, old_version), (new, new_version) in zip(before, now, strict=True))


def _runs_fused(detector: DigitDetector, batch: torch.Tensor) -> bool:
    """Whether :func:`detector_maps` can run ``batch`` through the fused oneDNN operator:
    float32 on the CPU, oneDNN and the operator present, and a network of plain convolutions,
    each followed by at most one ReLU."""
    return (batch.device.type == "cpu" and batch.dtype == torch.float32
            and torch.backends.mkldnn.is_available() and _fused_operator_present()
            and _convolutions_and_relus(list(detector.layers)))


def _convolutions_and_relus(layers: list[nn.Module]) -> bool:
    """Whether ``layers`` are float32 zero-padded convolutions, each followed by at most one
    ReLU."""
    previous = None
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            if layer.weight.dtype != torch.float32 or layer.padding_mode != "zeros":
                return False
        elif not isinstance(layer, nn.ReLU) or not isinstance(previous, nn.Conv2d):
            return False
        previous = layer
    return True


@functools.cache
def _fused_operator_present() -> bool:
    """Whether this torch build has oneDNN's fused convolution and weight reorder (private
    operators of torch's compiler; a build without them runs the module as it is)."""
    try:
        torch.ops.mkldnn._convolution_pointwise  # noqa: B018
        torch.ops.mkldnn._reorder_convolution_weight  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True
