"""Print and scan: turn a clean ink map into a scanned-looking page image, and map the ground
truth boxes through the same geometry.

Print: ink spread or erosion, broken glyphs, uneven inking. Scan: small skew, page curl and
shadow near the gutter, paper colour and texture, show-through of the other side, uneven illumination, optical
blur, sensor noise, a dark scanner bed around the page, occasionally a page turned by 90 degrees,
JPEG artefacts (applied when saving). Lengths scale with the dpi (reference: 150 dpi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ScanGeometry:
    """Where a point of the clean upright page (size ``width`` x ``height`` px) lands in the image.

    Forward map: rotate by ``skew_deg`` about the page centre, shift down by the curl
    ``curl_px * s(x)**2`` (s rises from 0 to 1 over the ``curl_side`` fifth of the page), pad by
    ``pad`` = (left, top, right, bottom) pixels of scanner bed, then turn the image by
    ``rotation`` degrees counter-clockwise (0, 90 or -90).
    """

    width: int
    height: int
    skew_deg: float = 0.0
    curl_px: float = 0.0
    curl_side: str = "right"
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)
    rotation: int = 0

    def _curl_weight(self, x):
        band = 0.2 * self.width
        if self.curl_side == "right":
            s = (x - (self.width - band)) / band
        else:
            s = (band - x) / band
        return np.clip(s, 0.0, 1.0) ** 2

    def warp_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """Inverse maps for ``cv2.remap``: for each pixel of the warped page, where to sample."""
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float32),
                           np.arange(self.height, dtype=np.float32))
        v = v - self.curl_px * self._curl_weight(u)
        cx, cy = self.width / 2, self.height / 2
        angle = math.radians(self.skew_deg)
        cos, sin = math.cos(angle), math.sin(angle)
        du, dv = u - cx, v - cy
        return ((cos * du + sin * dv + cx).astype(np.float32),
                (-sin * du + cos * dv + cy).astype(np.float32))

    def warp(self, array: np.ndarray, nearest: bool = False) -> np.ndarray:
        """Skew and curl a page-sized array (no ink / 0 where the page moved away)."""
        map_x, map_y = self.warp_maps()
        interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        return cv2.remap(array, map_x, map_y, interpolation, borderValue=0)

    def frame(self, array: np.ndarray, value: float) -> np.ndarray:
        """Pad a warped page with scanner bed of grey ``value`` and turn it by ``rotation``."""
        left, top, right, bottom = self.pad
        array = cv2.copyMakeBorder(array, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                   value=value)
        if self.rotation:
            array = np.ascontiguousarray(np.rot90(array, 1 if self.rotation == 90 else -1))
        return array

    @property
    def padded_size(self) -> tuple[int, int]:
        """(width, height) of the image before the 90-degree turn."""
        return (self.width + self.pad[0] + self.pad[2], self.height + self.pad[1] + self.pad[3])

    def map_points(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward-map points of the clean page to image coordinates (pixels, float)."""
        cx, cy = self.width / 2, self.height / 2
        angle = math.radians(self.skew_deg)
        cos, sin = math.cos(angle), math.sin(angle)
        dx, dy = x - cx, y - cy
        xs = cos * dx - sin * dy + cx
        ys = sin * dx + cos * dy + cy
        ys = ys + self.curl_px * self._curl_weight(xs)
        xs, ys = xs + self.pad[0], ys + self.pad[1]
        width, height = self.padded_size
        if self.rotation == 90:
            return ys, width - xs
        if self.rotation == -90:
            return height - ys, xs
        return xs, ys

    def map_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Integer boxes (N, 4) int64 (x1, y1 exclusive) around clean-page boxes (N, 4) x0, y0,
        x1, y1 after the forward map, each mapped through its corners and edge midpoints (the
        curl bends edges)."""
        x0, y0, x1, y1 = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[:, [i]]
                          for i in range(4))
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        xs = np.hstack([x0, x1, x0, x1, xm, xm, x0, x1])
        ys = np.hstack([y0, y0, y1, y1, y0, y1, ym, ym])
        u, v = self.map_points(xs, ys)
        return np.column_stack([np.floor(u.min(1)), np.floor(v.min(1)), np.ceil(u.max(1)),
                                np.ceil(v.max(1))]).astype(np.int64)


def _smooth_noise(rng, shape, cell: float) -> np.ndarray:
    """Noise with features about ``cell`` pixels wide, values roughly in [-1, 1] (float32)."""
    small = (max(2, round(shape[0] / cell) + 2), max(2, round(shape[1] / cell) + 2))
    field = rng.standard_normal(small, dtype=np.float32)
    return cv2.resize(field, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) / 1.5


def print_ink(ink: np.ndarray, rng, dpi: float) -> np.ndarray:
    """Ink spread or erosion, broken glyphs and uneven inking on a clean ink map (float32)."""
    scale = dpi / 150
    sigma = 0.5 * scale
    blurred = cv2.GaussianBlur(ink, (0, 0), sigma)
    threshold = rng.uniform(0.1, 0.4)
    ink = np.clip((blurred - threshold) * 4.0 + 0.5, 0.0, 1.0)
    holes = _smooth_noise(rng, ink.shape, 1.5 * scale) > rng.uniform(1.3, 2.0)
    ink[holes] *= 0.15
    inking = 1.0 - rng.uniform(0.05, 0.3) * np.abs(_smooth_noise(rng, ink.shape, 60 * scale))
    return ink * inking


def scan_page(ink: np.ndarray, rng, dpi: float) -> tuple[np.ndarray, ScanGeometry]:
    """Scanned-looking image (uint8, H x W grey or H x W x 3 RGB) of a clean ink map and the
    geometry that maps clean-page boxes into it."""
    height, width = ink.shape
    scale = dpi / 150
    pad = tuple(int(rng.uniform(0.005, 0.05) * (width if k % 2 == 0 else height))
                for k in range(4)) if rng.random() < 0.6 else (0, 0, 0, 0)
    turn = rng.random()
    geometry = ScanGeometry(
        width, height,
        skew_deg=float(rng.normal(0, 0.5)),
        curl_px=float(rng.uniform(0, 0.015) * height) if rng.random() < 0.4 else 0.0,
        curl_side="right" if rng.random() < 0.5 else "left",
        pad=pad,
        rotation=90 if turn < 0.03 else (-90 if turn < 0.06 else 0),
    )
    ink = print_ink(ink, rng, dpi)
    ink = geometry.warp(ink)

    paper = rng.uniform(0.78, 0.95) + rng.uniform(0.005, 0.025) * _smooth_noise(
        rng, ink.shape, 80 * scale)
    show = cv2.GaussianBlur(ink[:, ::-1], (0, 0), 1.5 * scale)
    paper *= 1 - rng.uniform(0.0, 0.15) * show
    x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    y = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    gx, gy = rng.uniform(-0.12, 0.12, size=2)
    vignette = rng.uniform(0.0, 0.15)
    paper *= (1 + gx * x - vignette * x * x) * (1 + gy * y - vignette * y * y)
    if geometry.curl_px:  # the gutter of a curled page lies in shadow
        distance = (0.5 - x) if geometry.curl_side == "right" else (x + 0.5)
        paper *= 1 - rng.uniform(0.1, 0.35) * np.exp(-distance / 0.04)
    page = paper * (1 - rng.uniform(0.75, 0.95) * ink)
    page = cv2.GaussianBlur(page, (0, 0), rng.uniform(0.3, 0.8) * scale)
    page += rng.uniform(0.01, 0.035) * rng.standard_normal(page.shape, dtype=np.float32)
    page = geometry.frame(page, rng.uniform(0.03, 0.2))
    page = np.clip(page * 255, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        tint = np.array([1.0, rng.uniform(0.9, 0.97), rng.uniform(0.75, 0.88)], dtype=np.float32)
        page = (page[..., None] * tint).astype(np.uint8)
    return page, geometry
