"""Training data of the detector: windows cut from labelled and digit-free images.

Each labelled image is brought to the working scale and cut into WINDOW-sized windows around
its digits and (fully labelled images) at random inked places; digit-free images give windows
at random inked places, cut at several scales. The windows are split by image into training and
validation windows; the training images are kept for the search of hard windows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from corpus_tools.ingest import file_sha256
from digit_detector.geometry import (
    check_boxes,
    class_height_ratios,
    image_digit_height,
    neighbour_distances,
)
from digit_detector.model import DetectorConfig
from digit_detector.page import PageReadError, load_page
from digit_detector.prepare import cell_sums, glyph_height, page_ink
from digit_detector.targets import blob_maps, box_mask

WINDOW = 72
"""Side of a stored training window at working scale, px (warped, then cropped to CROP; wide
enough that the most shrinking warp still samples inside it)."""
CROP = 48
"""Side of the window the network is trained on, px (more than twice the receptive field)."""
MAX_WINDOWS = 8000
"""Most stored positive windows (and as many negative ones); the rest is sampled away."""
MAX_VALIDATION = 1024
"""Most validation windows (evaluated after every epoch)."""
GLYPH_TO_DIGIT_HEIGHT = 1.13
"""Digit height over median glyph-component height when the training images are too small to
measure it (patch sets): the median measured on synthetic table pages (`tables synth`) before
the glyph height left out the scanner bed; like the shipped weights' ratio it was kept (README,
"The detector's default weights")."""
NEGATIVE_SCALES = (0.5, 2.0)
"""Range of working scales (times the estimate) at which windows of digit-free pages are cut,
because inference may look at a text page at any candidate scale."""
NEGATIVE_SHARE = 2.0
"""Windows cut from digit-free images per positive window: text and ornaments are most of a
corpus, and the detector must stay silent on them."""


@dataclasses.dataclass
class Windows:
    """Training windows at working scale.

    images (N, 1, WINDOW, WINDOW) uint8 ink x 255; masks (N, 1, WINDOW, WINDOW) uint8 loss
    weights x 10 (compact storage); points (N, K, 3) digit centres (x, y, digit) in window px;
    valid (N, K) which points exist.
    """

    images: torch.Tensor
    masks: torch.Tensor
    points: torch.Tensor
    valid: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: torch.Tensor) -> Windows:
        return Windows(self.images[index], self.masks[index], self.points[index],
                       self.valid[index])

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ink in [0, 1] and loss weights as float32 tensors."""
        return self.images.float() / 255, self.masks.float() / 10


@dataclasses.dataclass
class Source:
    """A training image at working scale, kept for the search of hard windows.

    ink (h, w) float32 in [0, 1]; mask (h, w) float32 loss weights; points (N, 3) digit
    centres as x, y, digit, px.
    """

    ink: np.ndarray
    mask: np.ndarray
    points: np.ndarray

    def windows(self, centres: np.ndarray) -> Windows:
        """Windows of this image centred on ``centres`` (M, 2) x, y px."""
        return _cut_windows(self.ink, self.mask, self.points, centres)


@dataclasses.dataclass
class TrainingData:
    """The windows a run learns and validates on, and what was measured on its images.

    ``config`` is the given configuration with the measured digit pitch, glyph-to-digit height
    ratio and training data hash; ``train_sources`` are the training images (for the search of
    hard windows); ``images`` counts the labelled images read, ``negative_images`` the
    digit-free ones given; ``problems`` lists the skipped images with the reason.
    """

    config: DetectorConfig
    train: Windows
    validation: Windows
    train_sources: list[Source]
    images: int
    negative_images: int
    problems: list[str]


def prepare_training_data(boxes: pd.DataFrame, negatives: Sequence[str | Path],
                          config: DetectorConfig, *, fully_labelled: bool,
                          validation_fraction: float, rng: np.random.Generator,
                          measure_geometry: bool = True) -> TrainingData:
    """Read the images of ``boxes`` and ``negatives``, cut their windows and split them by image
    (parameters as :func:`digit_detector.training.train_detector`); draws from ``rng``.
    ``measure_geometry`` False keeps the digit pitch and glyph-to-digit height ratio of
    ``config`` (fine-tuning) instead of measuring them on the images.

    Raises ValueError when there is no labelled digit or no labelled image can be read.
    """
    boxes = check_boxes(boxes)
    if boxes.empty:
        raise ValueError("no labelled digits to train on")
    problems: list[str] = []
    positives, pitches, glyph_ratios, used_images = _positive_sources(
        boxes, config, fully_labelled, problems, rng)
    if not used_images:
        raise ValueError("none of the labelled images could be read: " + "; ".join(problems))
    negative_paths = [Path(p) for p in negatives]
    positive_count = sum(len(windows) for windows, _ in positives)
    per_negative = max(1, math.ceil(NEGATIVE_SHARE * positive_count
                                    / max(1, len(negative_paths))))
    if measure_geometry:
        ratio = float(np.median(glyph_ratios)) if glyph_ratios else GLYPH_TO_DIGIT_HEIGHT
        pitch = float(np.median(pitches)) if len(pitches) else 0.75 * config.digit_height_px
        config = dataclasses.replace(config, digit_pitch_px=round(pitch, 3),
                                     glyph_to_digit_height=round(ratio, 4))
    negative_sources = _negative_sources(negative_paths, config, config.glyph_to_digit_height,
                                         per_negative, rng, problems)
    config = dataclasses.replace(
        config, training_data_hash=training_data_hash(boxes, negative_paths))
    train, validation, train_sources = _split(positives, negative_sources,
                                              validation_fraction, rng)
    return TrainingData(config, train, validation, train_sources, len(used_images),
                        len(negative_paths), problems)


def centre_crop(images, masks, points, valid, sigma):
    """Centre CROP x CROP crop of WINDOW-sized windows and the targets drawn for it.

    images, masks (N, 1, WINDOW, WINDOW) float; points (N, K, 3) x, y, digit in window px;
    valid (N, K); returns images, masks (N, 1, CROP, CROP) and targets (N, 10, CROP, CROP)
    with blobs of ``sigma`` px.
    """
    offset = (WINDOW - CROP) // 2
    images = images[..., offset : offset + CROP, offset : offset + CROP]
    masks = masks[..., offset : offset + CROP, offset : offset + CROP]
    shifted = points.clone()
    shifted[..., :2] -= offset
    targets = blob_maps(shifted, valid, CROP, CROP, sigma)
    return images.contiguous(), masks.contiguous(), targets



def _positive_sources(boxes, config, fully_labelled, problems, rng):
    """Every readable labelled image with its windows (around the labelled digits and, fully
    labelled, at random inked places) as (Windows, Source) pairs."""
    ratios = class_height_ratios(boxes)
    groups, pitches, glyph_ratios, used = [], [], [], []
    for image, group in boxes.groupby("image", sort=True):
        try:
            grey = load_page(image)
        except PageReadError as error:
            problems.append(str(error))
            continue
        height = image_digit_height(group, ratios)
        scale = config.digit_height_px / height
        pitches.extend(neighbour_distances(group, height) * scale)
        glyph = glyph_height(grey) if len(group) >= 20 else None
        if glyph is not None:
            glyph_ratios.append(height / glyph)
        ink = page_ink(grey, scale, config.digit_height_px)
        sy, sx = ink.shape[0] / grey.shape[0], ink.shape[1] / grey.shape[1]
        working = group[["x0", "y0", "x1", "y1"]].to_numpy(float) * [sx, sy, sx, sy]
        if fully_labelled:
            mask = np.ones(ink.shape, dtype=np.float32)
        else:
            mask = box_mask(working, ink.shape[0], ink.shape[1], 0.25 * config.digit_height_px)
        centres = np.column_stack([(working[:, 0] + working[:, 2]) / 2 - 0.5,
                                   (working[:, 1] + working[:, 3]) / 2 - 0.5,
                                   group.digit.to_numpy()])
        places = _spread_out(centres[:, :2], CROP / 4)
        if fully_labelled:
            places = np.vstack([places, _inked_centres(ink, len(places) // 4 + 1, rng)])
        source = Source(ink, mask, centres)
        groups.append((source.windows(places), source))
        used.append(image)
    total = sum(len(windows) for windows, _ in groups)
    if total > MAX_WINDOWS:
        groups = [(windows.subset(torch.from_numpy(np.sort(rng.choice(
            len(windows), max(1, round(len(windows) * MAX_WINDOWS / total)), replace=False)))),
            source) for windows, source in groups]
    return groups, np.asarray(pitches), glyph_ratios, used


def _negative_sources(paths, config, ratio, per_image, rng, problems):
    """Digit-free images at three working scales drawn log-uniformly from ``NEGATIVE_SCALES``
    times the estimated one, each with windows at inked places (all-zero target, full mask), as
    (Windows, Source) pairs."""
    groups = []
    for path in paths:
        try:
            grey = load_page(path)
        except PageReadError as error:
            problems.append(str(error))
            continue
        glyph = glyph_height(grey)
        estimate = 1.0 if glyph is None else config.digit_height_px / (glyph * ratio)
        for factor in np.exp(rng.uniform(*np.log(NEGATIVE_SCALES), size=3)):
            ink = page_ink(grey, estimate * factor, config.digit_height_px)
            centres = _inked_centres(ink, max(1, per_image // 3), rng)
            source = Source(ink, np.ones(ink.shape, dtype=np.float32), np.zeros((0, 3)))
            groups.append((source.windows(centres), source))
    return groups


def _inked_centres(ink: np.ndarray, count: int, rng) -> np.ndarray:
    """Centres (x, y) px of up to ``count`` distinct CROP/2-sized cells of ``ink`` holding ink
    (any cells when none does), drawn at random."""
    sums = cell_sums(ink, CROP // 2)
    inked = np.flatnonzero(sums.ravel() > 0)
    if len(inked) == 0:
        inked = np.arange(sums.size)
    chosen = rng.choice(inked, size=min(count, len(inked)), replace=False)
    return cell_centres(chosen, sums.shape[1])


def cell_centres(cells: np.ndarray, columns: int) -> np.ndarray:
    """Centres (M, 2) x, y px of the CROP/2-sized cells numbered ``cells`` row by row."""
    cell = CROP // 2
    return np.column_stack([(cells % columns + 0.5) * cell, (cells // columns + 0.5) * cell])


def _spread_out(centres: np.ndarray, distance: float) -> np.ndarray:
    """A subset of ``centres`` (N, 2) at least ``distance`` apart (greedy, in order)."""
    kept = np.empty((0, 2))
    for centre in centres:
        if len(kept) == 0 or np.hypot(*(kept - centre).T).min() >= distance:
            kept = np.vstack([kept, centre])
    return kept


def _cut_windows(ink, mask, points, centres) -> Windows:
    """WINDOW x WINDOW windows of ``ink`` and ``mask`` centred on ``centres`` (x, y) px."""
    half = WINDOW // 2
    padded_ink = np.pad(ink, half)
    padded_mask = np.pad(mask, half)
    images, masks, window_points = [], [], []
    for cx, cy in centres:
        x0, y0 = int(round(cx)) - half, int(round(cy)) - half
        images.append(padded_ink[y0 + half : y0 + half + WINDOW, x0 + half : x0 + half + WINDOW])
        masks.append(padded_mask[y0 + half : y0 + half + WINDOW, x0 + half : x0 + half + WINDOW])
        inside = ((points[:, 0] >= x0 - 8) & (points[:, 0] < x0 + WINDOW + 8)
                  & (points[:, 1] >= y0 - 8) & (points[:, 1] < y0 + WINDOW + 8))
        window_points.append(points[inside] - [x0, y0, 0])
    most = max([len(p) for p in window_points] + [1])
    point_array = np.zeros((len(centres), most, 3), dtype=np.float32)
    valid = np.zeros((len(centres), most), dtype=bool)
    for i, found in enumerate(window_points):
        point_array[i, : len(found)] = found
        valid[i, : len(found)] = True
    images = np.rint(np.asarray(images, dtype=np.float32) * 255).astype(np.uint8)
    masks = np.rint(np.asarray(masks, dtype=np.float32) * 10).astype(np.uint8)
    return Windows(torch.from_numpy(images[:, None].copy()), torch.from_numpy(masks[:, None].copy()),
                   torch.from_numpy(point_array), torch.from_numpy(valid))


def _split(positives, negatives, fraction, rng) -> tuple[Windows, Windows, list[Source]]:
    """Split the per-image (Windows, Source) pairs into training and validation windows, by
    image; also returns the training images."""
    train, validation = [], []
    for groups in (positives, negatives):
        order = rng.permutation(len(groups))
        held = max(1, round(fraction * len(groups))) if len(groups) > 1 else 0
        validation += [groups[i] for i in order[:held]]
        train += [groups[i] for i in order[held:]]
    validation = concatenate([windows for windows, _ in validation])
    if len(validation) > MAX_VALIDATION:
        keep = np.sort(rng.choice(len(validation), MAX_VALIDATION, replace=False))
        validation = validation.subset(torch.from_numpy(keep))
    return (concatenate([windows for windows, _ in train]), validation,
            [source for _, source in train])


def concatenate(groups: list[Windows]) -> Windows:
    """Join window groups, padding their point lists to a common length."""
    groups = [g for g in groups if len(g)]
    if not groups:
        empty = torch.zeros((0, 1, WINDOW, WINDOW), dtype=torch.uint8)
        return Windows(empty, empty.clone(), torch.zeros((0, 1, 3)), torch.zeros((0, 1), dtype=bool))
    most = max(g.points.shape[1] for g in groups)
    points = [F.pad(g.points, (0, 0, 0, most - g.points.shape[1])) for g in groups]
    valid = [F.pad(g.valid, (0, most - g.valid.shape[1])) for g in groups]
    return Windows(torch.cat([g.images for g in groups]), torch.cat([g.masks for g in groups]),
                   torch.cat(points), torch.cat(valid))


def training_data_hash(boxes: pd.DataFrame, negatives: Sequence[Path]) -> str:
    """SHA-256 over the labelled boxes and the bytes of every training image."""
    digest = hashlib.sha256()
    named = boxes.assign(image=[Path(p).name for p in boxes.image])
    digest.update(named.sort_values(list(named.columns)).to_csv(index=False).encode())
    paths = sorted(set(boxes.image)) + sorted(str(p) for p in negatives)
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(file_sha256(path).encode() if Path(path).is_file() else b"missing")
    return digest.hexdigest()
