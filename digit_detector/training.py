"""Training the detector: the loop, and training straight to a weight file with resume.

The modules of a run, in order: :mod:`~digit_detector.training_data` cuts windows from the
labelled images (around their digits) and from digit-free images, and splits them by image;
:mod:`~digit_detector.augmentation` warps and re-inks them on the fly and makes decoys;
:mod:`~digit_detector.training_loss` is the masked loss, its calibrated validation and the
search of hard windows; :mod:`~digit_detector.training_state` holds what changes from epoch to
epoch and saves it as a checkpoint. Here: every batch holds augmented training windows, decoys
(DECOY_SHARE; digits at a wrong scale or turned, empty target) and hard windows (HARD_SHARE;
where the current weights err most on the training images). A running average of the weights
is validated after each epoch; the best epoch's weights are kept, and a validation split by
image drives early stopping.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from digit_detector.augmentation import augment, decoys
from digit_detector.checkpoint import run_fingerprint, weights_hash
from digit_detector.model import DetectorConfig, DigitDetector
from digit_detector.training_data import Source, Windows, prepare_training_data
from digit_detector.training_loss import calibrated_loss, hard_windows
from digit_detector.training_state import TrainingState
from digit_detector.weights import save_detector

DECOY_SHARE = 0.25
"""Share of every batch that shows labelled windows at a clearly wrong scale (DECOY_SCALES)
or turned by 90 degrees, with all-zero targets: it teaches the detector to answer only at the
right scale and rotation, which is what makes its response a reliable scale and rotation
choice (and keeps text at a wrong scale from firing)."""
HARD_SHARE = 0.25
"""Share of every batch drawn from hard windows: the places of the training images where the
current weights err most (letters read as digits, digits missed), found anew every
MINING_EVERY epochs. Uniformly drawn windows rarely show the few words of a table page."""
MINING_EVERY = 4
"""Epochs between two searches for hard windows."""
MINED_IMAGES = 64
"""Training images (drawn at random) searched for hard windows each time."""


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
    init: DigitDetector | None = None,
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
        it once the returned detector is saved (:func:`train_to_file` does both).
    init : weights to start from (fine-tuning, e.g. the shipped detector on a new typeface);
        its configuration replaces ``config``, and its working geometry (digit height, pitch,
        glyph-to-digit height ratio) is kept rather than measured on the new images: the
        weights were trained for that scale, and a few patches cannot measure it.
    """
    started = time.perf_counter()
    config = init.config if init is not None else (config or DetectorConfig())
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    data = prepare_training_data(boxes, negatives, config, fully_labelled=fully_labelled,
                                 validation_fraction=validation_fraction, rng=rng,
                                 measure_geometry=init is None)
    config = data.config
    state = TrainingState.start(config, learning_rate=learning_rate, seed=seed, rng=rng,
                                init=init)
    fingerprint = run_fingerprint(
        config=config.to_json(), seed=seed, steps_per_epoch=steps_per_epoch,
        batch_size=batch_size, learning_rate=learning_rate,
        validation_fraction=validation_fraction, fully_labelled=fully_labelled,
        init=None if init is None else weights_hash(init))
    if checkpoint is not None and Path(checkpoint).is_file():
        state.restore(checkpoint, fingerprint)
    start = state.epoch
    sigma = config.blob_sigma_px
    while state.epoch < epochs:
        total = 0.0
        for _ in range(steps_per_epoch):
            total += state.step(*_training_batch(data.train, state.hard, batch_size, sigma,
                                                 state.generator))
        state.end_epoch(total / steps_per_epoch, *calibrated_loss(state.average,
                                                                  data.validation, sigma))
        stop = state.epoch - state.best_epoch >= patience
        if not stop and state.epoch % MINING_EVERY == 0 and data.train_sources:
            _search_hard_windows(state, data.train_sources)
        if checkpoint is not None and not stop:
            state.save(checkpoint, fingerprint)
        if progress is not None:
            progress(state.epoch, epochs, f"train {state.train_losses[-1]:.4f} validation "
                     f"{state.validation_losses[-1]:.4f} (best {state.best_loss:.4f} @ "
                     f"{state.best_epoch})")
        if stop:
            break
    summary = TrainingSummary(
        images=data.images, negative_images=data.negative_images,
        train_windows=len(data.train), validation_windows=len(data.validation),
        epochs_run=state.epoch, resumed_after_epoch=start, best_epoch=state.best_epoch,
        best_validation_loss=state.best_loss, output_gain=state.best_gain,
        train_losses=state.train_losses, validation_losses=state.validation_losses,
        stopped_early=state.epoch < epochs, seconds=time.perf_counter() - started,
        problems=data.problems)
    return state.best_detector(), summary


def checkpoint_path(output: str | Path) -> Path:
    """The checkpoint file of a run that writes its weights to ``output``: beside it,
    ``OUTPUT.checkpoint``."""
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def train_to_file(
    boxes: pd.DataFrame,
    negatives: Sequence[str | Path],
    output: str | Path,
    *,
    notice: Callable[[str], None] | None = None,
    **settings,
) -> tuple[DigitDetector, TrainingSummary]:
    """Train a detector (:func:`train_detector` with ``settings``) and write it to ``output``
    (safetensors), with resume: the run's state is saved after every epoch to
    :func:`checkpoint_path`; when that file exists at the start, the interrupted run goes on
    from it (``notice`` is told so). The checkpoint is removed once the weights are written.

    Raises :class:`~digit_detector.checkpoint.CheckpointError` when the checkpoint belongs to
    another run (other data, settings or ``init``), ValueError when there is nothing to train on.
    """
    checkpoint = checkpoint_path(output)
    if notice is not None and checkpoint.is_file():
        notice(f"found {checkpoint}: resuming the interrupted run it holds "
               "(delete it to start afresh)")
    detector, summary = train_detector(boxes, negatives, checkpoint=checkpoint, **settings)
    save_detector(detector, output)
    checkpoint.unlink(missing_ok=True)
    return detector, summary


def _search_hard_windows(state: TrainingState, sources: Sequence[Source]) -> None:
    """Add to the state's pool the hard windows of MINED_IMAGES of ``sources`` drawn with the
    state's numpy generator, where its running average errs most."""
    searched = state.rng.choice(len(sources), min(MINED_IMAGES, len(sources)), replace=False)
    state.add_hard_windows(hard_windows(state.average, [sources[i] for i in searched]))


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

