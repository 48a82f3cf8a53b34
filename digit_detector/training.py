"""Training the detector from labelled digit boxes and negative (digit-free) images.

Each training image is brought to the working scale, cut into windows around its labelled
digits and (fully labelled images) at random inked places; digit-free images give windows at
random inked places, cut at several scales. The network learns by masked mean squared error to
draw a unit Gaussian blob at every digit centre. Windows are augmented on the fly (affine warp
with a digit-size change of 0.7-1.4x, ink weight and contrast, erosion, blur, noise), and every
batch also holds decoys (digits far too small, far too large or turned by 90 degrees, whose
target is empty) and hard windows (where the current weights err most on the training images).
The detector thus tolerates the error of the cheap scale estimate yet stays silent at wrong
scales and rotations.

A running average of the weights is what gets validated and kept. Because the network is
bias-free, its output scales with its last layer: each epoch is validated at the output gain
that fits the validation targets best, and the kept weights carry that gain. A validation split
by image drives early stopping; the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from corpus_tools.ingest import file_sha256
from digit_detector.checkpoint import load_checkpoint, run_fingerprint, save_checkpoint
from digit_detector.geometry import (
    check_boxes,
    class_height_ratios,
    image_digit_height,
    neighbour_distances,
)
from digit_detector.model import DetectorConfig, DigitDetector
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
measure it (patch sets): the median measured on synthetic table pages (`tables synth`)."""
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
DECOY_SHARE = 0.25
"""Share of every batch that shows labelled windows at a clearly wrong scale (DECOY_SCALES)
or turned by 90 degrees, with all-zero targets: it teaches the detector to answer only at the
right scale and rotation, which is what makes its response a reliable scale and rotation
choice (and keeps text at a wrong scale from firing)."""
DECOY_SCALES = ((0.4, 0.55), (1.9, 2.6))
"""Digit-size changes of decoy windows: far outside SCALE_JITTER on either side."""
NEGATIVE_SCALES = (0.5, 2.0)
"""Range of working scales (times the estimate) at which windows of digit-free pages are cut,
because inference may look at a text page at any candidate scale."""
NEGATIVE_SHARE = 2.0
"""Windows cut from digit-free images per positive window: text and ornaments are most of a
corpus, and the detector must stay silent on them."""
WEIGHT_AVERAGE_DECAY = 0.998
"""Decay per optimiser step of the exponential running average of the weights (time constant
500 steps). The raw weights swing from step to step (validation loss 0.009-0.05 between
epochs); their average is steadier, so the best epoch is chosen on a smooth curve."""
HARD_SHARE = 0.25
"""Share of every batch drawn from hard windows: the places of the training images where the
current weights err most (letters read as digits, digits missed), found anew every
MINING_EVERY epochs. Uniformly drawn windows rarely show the few words of a table page."""
MINING_EVERY = 4
"""Epochs between two searches for hard windows."""
MINED_IMAGES = 64
"""Training images (drawn at random) searched for hard windows each time."""
HARD_PER_IMAGE = 8
"""Hard windows cut from each searched image: its CROP/2-sized cells of largest loss."""
HARD_POOL = 2048
"""Most hard windows kept; the oldest give way to new ones."""
BLOB_WEIGHT = 2.0
"""Extra loss weight on the blobs (weight 1 + BLOB_WEIGHT x target), so that the few blob
pixels are not drowned by the background."""


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
class TrainingSummary:
    """What a training run did; ``problems`` lists skipped images with the reason.
    ``resumed_after_epoch`` is the checkpoint's epoch (0 for a fresh run) and ``seconds`` the
    time of this call alone."""

    images: int
    negative_images: int
    train_windows: int
    validation_windows: int
    epochs_run: int
    resumed_after_epoch: int
    best_epoch: int
    best_validation_loss: float
    output_gain: float
    train_losses: list[float]
    validation_losses: list[float]
    stopped_early: bool
    seconds: float
    problems: list[str]


def train_detector(
    boxes: pd.DataFrame,
    negatives: Sequence[str | Path] = (),
    *,
    config: DetectorConfig | None = None,
    epochs: int = 30,
    steps_per_epoch: int = 60,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    seed: int = 0,
    validation_fraction: float = 0.15,
    patience: int = 10,
    fully_labelled: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[DigitDetector, TrainingSummary]:
    """Train a detector; returns it (best validation epoch) and a summary.

    Parameters
    ----------
    boxes : one row per labelled digit: image (path), x0, y0, x1, y1 (page px, x1/y1
        exclusive), digit (0-9).
    negatives : images without any digit (non-table pages or patches).
    config : architecture and working digit height; pitch, glyph ratio and data hash are
        measured here and written into the returned detector's config.
    fully_labelled : every digit in the images of ``boxes`` is labelled (e.g. synthetic
        pages): the loss then also covers ink far from the boxes.
    steps_per_epoch : optimiser steps per epoch, each on a batch drawn at random from the
        training windows (independent of the data size, so the run time is predictable).
    progress : called as ``progress(epoch, epochs, message)`` after each epoch.
    checkpoint : file for the run's whole state, written after every epoch (except the one that
        stops the run early). When it exists at the start, the run goes on from it and ends as
        the uninterrupted run would have (bit for bit at one thread); :class:`~digit_detector.
        checkpoint.CheckpointError` when it belongs to another run. It is left in place: delete
        it once the returned detector is saved.
    """
    started = time.perf_counter()
    boxes = check_boxes(boxes)
    if boxes.empty:
        raise ValueError("no labelled digits to train on")
    config = config or DetectorConfig()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    problems: list[str] = []
    positives, pitches, glyph_ratios, used_images = _positive_sources(
        boxes, config, fully_labelled, problems, rng)
    if not used_images:
        raise ValueError("none of the labelled images could be read: " + "; ".join(problems))
    negative_paths = [Path(p) for p in negatives]
    positive_count = sum(len(windows) for windows, _ in positives)
    per_negative = max(1, math.ceil(NEGATIVE_SHARE * positive_count
                                    / max(1, len(negative_paths))))
    ratio = float(np.median(glyph_ratios)) if glyph_ratios else GLYPH_TO_DIGIT_HEIGHT
    negative_sources = _negative_sources(negative_paths, config, ratio, per_negative, rng,
                                         problems)
    pitch = float(np.median(pitches)) if len(pitches) else 0.75 * config.digit_height_px
    config = dataclasses.replace(
        config, digit_pitch_px=round(pitch, 3), glyph_to_digit_height=round(ratio, 4),
        training_data_hash=training_data_hash(boxes, negative_paths))
    train, validation, train_sources = _split(positives, negative_sources,
                                              validation_fraction, rng)
    detector = DigitDetector(config)
    detector.train()
    optimizer = torch.optim.Adam(detector.parameters(), lr=learning_rate)
    average = copy.deepcopy(detector)
    generator = torch.Generator().manual_seed(seed)
    hard = _concatenate([])
    best_loss, best_epoch, best_state, best_gain = math.inf, 0, None, 1.0
    train_losses, validation_losses = [], []
    fingerprint = run_fingerprint(
        config=config.to_json(), seed=seed, steps_per_epoch=steps_per_epoch,
        batch_size=batch_size, learning_rate=learning_rate,
        validation_fraction=validation_fraction, fully_labelled=fully_labelled)
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        tensors, state = load_checkpoint(checkpoint, fingerprint)
        hard, best_state = _restore(tensors, state, detector, average, optimizer, generator, rng)
        start, best_loss, best_epoch, best_gain = (
            state["epoch"], state["best_loss"], state["best_epoch"], state["best_gain"])
        train_losses, validation_losses = state["train_losses"], state["validation_losses"]
    epoch = start
    for epoch in range(start + 1, epochs + 1):
        total = 0.0
        for _ in range(steps_per_epoch):
            images, masks, targets = _training_batch(train, hard, batch_size,
                                                     config.blob_sigma_px, generator)
            loss = masked_mse(detector(images), targets, masks)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            _update_average(average, detector)
            total += float(loss.detach())
        train_losses.append(total / steps_per_epoch)
        loss, gain = calibrated_loss(average, validation, config.blob_sigma_px)
        validation_losses.append(loss)
        if loss < best_loss:
            best_loss, best_epoch, best_gain = loss, epoch, gain
            best_state = {k: v.clone() for k, v in average.state_dict().items()}
        stop = epoch - best_epoch >= patience
        if not stop and epoch % MINING_EVERY == 0 and train_sources:
            searched = rng.choice(len(train_sources), min(MINED_IMAGES, len(train_sources)),
                                  replace=False)
            found = hard_windows(average, [train_sources[i] for i in searched])
            hard = _concatenate([hard, found])
            hard = hard.subset(torch.arange(max(0, len(hard) - HARD_POOL), len(hard)))
        if checkpoint is not None and not stop:
            state = {"epoch": epoch, "best_loss": best_loss, "best_epoch": best_epoch,
                     "best_gain": best_gain, "train_losses": train_losses,
                     "validation_losses": validation_losses,
                     "numpy_rng": rng.bit_generator.state}
            save_checkpoint(checkpoint, _state_tensors(detector, average, optimizer, best_state,
                                                       hard, generator), state, fingerprint)
        if progress is not None:
            progress(epoch, epochs, f"train {train_losses[-1]:.4f} validation "
                     f"{validation_losses[-1]:.4f} (best {best_loss:.4f} @ {best_epoch})")
        if stop:
            break
    average.load_state_dict(best_state)
    apply_output_gain(average, best_gain)
    average.eval()
    summary = TrainingSummary(
        images=len(used_images), negative_images=len(negative_paths), train_windows=len(train),
        validation_windows=len(validation), epochs_run=epoch, resumed_after_epoch=start,
        best_epoch=best_epoch,
        best_validation_loss=best_loss, output_gain=best_gain, train_losses=train_losses,
        validation_losses=validation_losses, stopped_early=epoch < epochs,
        seconds=time.perf_counter() - started, problems=problems)
    return average, summary


def _state_tensors(detector, average, optimizer, best_state, hard: Windows, generator):
    """The tensors of a checkpoint: weights, running average, best average, Adam's moments,
    the hard-window pool and the torch generator."""
    tensors = {f"detector.{k}": v for k, v in detector.state_dict().items()}
    tensors |= {f"average.{k}": v for k, v in average.state_dict().items()}
    tensors |= {f"best.{k}": v for k, v in (best_state or {}).items()}
    for index, moments in optimizer.state_dict()["state"].items():
        tensors |= {f"optimizer.{index}.{k}": v for k, v in moments.items()}
    tensors |= {f"hard.{field.name}": getattr(hard, field.name)
                for field in dataclasses.fields(Windows)}
    tensors["generator"] = generator.get_state()
    return tensors


def _restore(tensors, state, detector, average, optimizer, generator, rng):
    """Load a checkpoint's tensors and generator states (see :func:`_state_tensors`) into the
    run's objects; returns the hard-window pool and the best average's weights (or None)."""
    def part(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    detector.load_state_dict(part("detector."))
    average.load_state_dict(part("average."))
    moments: dict[int, dict] = {}
    for key, value in part("optimizer.").items():
        index, name = key.split(".", 1)
        moments.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": moments,
                               "param_groups": optimizer.state_dict()["param_groups"]})
    generator.set_state(tensors["generator"])
    rng.bit_generator.state = state["numpy_rng"]
    hard = Windows(**{field.name: tensors[f"hard.{field.name}"]
                      for field in dataclasses.fields(Windows)})
    return hard, part("best.") or None


def _training_batch(train: Windows, hard: Windows, size: int, sigma: float,
                    generator: torch.Generator):
    """Images, masks and targets of one step: ``size`` augmented training windows, then
    decoys (``DECOY_SHARE``) and augmented hard windows (``HARD_SHARE``, once there are any)."""
    def draw(windows, share):
        count = size if share is None else max(1, round(share * size))
        return windows.subset(torch.randint(len(windows), (count,), generator=generator))

    parts = [augment(draw(train, None), sigma, generator)]
    parts.append(decoys(draw(train, DECOY_SHARE), generator))
    if len(hard):
        parts.append(augment(draw(hard, HARD_SHARE), sigma, generator))
    return tuple(torch.cat(part) for part in zip(*parts, strict=True))


def _update_average(average: DigitDetector, detector: DigitDetector) -> None:
    """Move the running average of the weights one step towards the current weights."""
    with torch.no_grad():
        for kept, current in zip(average.parameters(), detector.parameters(), strict=True):
            kept.lerp_(current, 1 - WEIGHT_AVERAGE_DECAY)


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
            groups.append(source.windows(_cell_centres(worst, cells.shape[1])))
    detector.train()
    return _concatenate(groups)


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
            images, masks, targets = _crop(images, masks, batch.points, batch.valid, sigma)
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
    return _crop(images, masks, points, batch.valid, sigma)


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


def _crop(images, masks, points, valid, sigma):
    """Centre CROP x CROP crop of WINDOW-sized windows and the targets drawn for it."""
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
    return _cell_centres(chosen, sums.shape[1])


def _cell_centres(cells: np.ndarray, columns: int) -> np.ndarray:
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
    validation = _concatenate([windows for windows, _ in validation])
    if len(validation) > MAX_VALIDATION:
        keep = np.sort(rng.choice(len(validation), MAX_VALIDATION, replace=False))
        validation = validation.subset(torch.from_numpy(keep))
    return (_concatenate([windows for windows, _ in train]), validation,
            [source for _, source in train])


def _concatenate(groups: list[Windows]) -> Windows:
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
