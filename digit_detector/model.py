"""The detector network: a bias-free stack of convolutions and ReLUs.

No biases means an all-background input (zero ink) gives exactly zero maps, and BiLRP on the
network is exactly conservative. No pooling or stride: the 10 digit maps come out at the
resolution of the input.
"""

from __future__ import annotations

import dataclasses
import json

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One convolution: output channels, square kernel size and dilation (odd kernels only)."""

    out_channels: int
    kernel: int
    dilation: int = 1


DEFAULT_LAYERS = (
    LayerSpec(12, 5),
    LayerSpec(16, 3),
    LayerSpec(16, 3, dilation=2),
    LayerSpec(16, 3, dilation=2),
    LayerSpec(16, 3, dilation=3),
    LayerSpec(16, 3, dilation=4),
    LayerSpec(16, 3),
)
"""Receptive field 31 px (about three digit heights, five digit pitches, at the default
working scale) for about 27 kFLOP per pixel: 3x3 kernels with growing dilation see far at
little cost. Context is what tells a 0 from the letter o or a 1 from an I, and each widening
paid: table F1 on 120 held-out-typeface synthetic pages was 0.885 with 17 px, 0.916 with 23 px
and 0.937 with 31 px, and inference stays above one page per second on two CPU cores."""


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Architecture and working scale of a detector.

    Attributes
    ----------
    layers : hidden convolutions (each followed by a ReLU); a final 1x1 convolution to the
        10 digit maps is always added.
    digit_height_px : height of a printed digit (median box height) at the working scale, px.
    digit_pitch_px : distance between the centres of two neighbouring digits of one number at
        the working scale, px. The bigram network shifts maps by about this much.
    glyph_to_digit_height : digit height divided by the median height of a page's glyph-like
        ink components (measured on the training pages); turns that cheap page statistic into
        a digit height when the working scale of a new page is estimated. The shipped weights
        carry 1.18, measured before the scanner bed was left out of the glyph height; the
        measure now gives 1.03 on their training pages, and 1.18 was kept: it reads fewer
        letters as digits (README, "The detector's default weights").
    blob_sigma_px : standard deviation of the target Gaussian blobs, px at the working scale.
    training_data_hash : SHA-256 over the training annotations and images ("" when untrained).
    """

    layers: tuple[LayerSpec, ...] = DEFAULT_LAYERS
    digit_height_px: float = 9.0
    digit_pitch_px: float = 6.0
    glyph_to_digit_height: float = 1.0
    blob_sigma_px: float = 1.5
    training_data_hash: str = ""

    def to_json(self) -> str:
        """The configuration as a JSON string (stored in the weight file's metadata)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DetectorConfig:
        """Inverse of :meth:`to_json`; raises ``ValueError`` on a malformed configuration."""
        try:
            raw = json.loads(text)
            layers = tuple(LayerSpec(**spec) for spec in raw.pop("layers"))
            config = cls(layers=layers, **raw)
        except (TypeError, KeyError, AttributeError, json.JSONDecodeError) as error:
            raise ValueError(f"malformed detector configuration: {error}") from None
        for spec in config.layers:
            if spec.out_channels < 1 or spec.kernel < 1 or spec.kernel % 2 == 0 or spec.dilation < 1:
                raise ValueError(f"malformed detector configuration: bad layer {spec}")
        if config.digit_height_px <= 0 or config.digit_pitch_px <= 0:
            raise ValueError("malformed detector configuration: digit size must be positive")
        return config

    @property
    def receptive_field_px(self) -> int:
        """Side of the square input window that one output pixel depends on, px."""
        return 1 + sum((spec.kernel - 1) * spec.dilation for spec in self.layers)

    def flops_per_pixel(self) -> int:
        """Floating-point operations (multiply and add counted separately) per input pixel."""
        flops, channels = 0, 1
        for spec in self.layers:
            flops += 2 * channels * spec.out_channels * spec.kernel**2
            channels = spec.out_channels
        return flops + 2 * channels * 10


class DigitDetector(nn.Module):
    """Bias-free Conv2d/ReLU stack: prepared page (B, 1, h, w) -> digit maps (B, 10, h, w).

    Map ``j`` shows a Gaussian blob (peak 1) at the centre of every printed
    digit ``j``. The input is ink intensity in [0, 1] (0 = paper) at the working scale, as made by
    :func:`digit_detector.prepare_page`.
    """

    def __init__(self, config: DetectorConfig | None = None):
        super().__init__()
        self.config = config or DetectorConfig()
        modules: list[nn.Module] = []
        channels = 1
        for spec in self.config.layers:
            padding = spec.dilation * (spec.kernel // 2)
            modules.append(
                nn.Conv2d(channels, spec.out_channels, spec.kernel, padding=padding,
                          dilation=spec.dilation, bias=False)
            )
            modules.append(nn.ReLU())
            channels = spec.out_channels
        modules.append(nn.Conv2d(channels, 10, 1, bias=False))
        modules.append(nn.ReLU())
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Digit maps (B, 10, h, w) for prepared input ``x`` (B, 1, h, w) float32."""
        return self.layers(x)
