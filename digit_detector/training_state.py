"""The state of a training run that changes from epoch to epoch, and its checkpoint.

A resumed run goes on exactly as the uninterrupted one when it gets back the weights, their
running average, the best average so far (with its epoch, loss and output gain), Adam's
moments, the pool of hard windows, both random generators (torch: batches and augmentation;
numpy: the search of hard windows) and the losses of the epochs run. :class:`TrainingState`
holds all of it and writes and reads it as a checkpoint (:mod:`digit_detector.checkpoint`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch

from digit_detector.checkpoint import load_checkpoint, save_checkpoint
from digit_detector.model import DetectorConfig, DigitDetector
from digit_detector.training_data import Windows, concatenate
from digit_detector.training_loss import apply_output_gain, masked_mse

WEIGHT_AVERAGE_DECAY = 0.998
"""Decay per optimiser step of the exponential running average of the weights (time constant
500 steps). The raw weights swing from step to step (validation loss 0.009-0.05 between
epochs); their average is steadier, so the best epoch is chosen on a smooth curve."""
HARD_POOL = 2048
"""Most hard windows kept; the oldest give way to new ones."""


@dataclasses.dataclass
class TrainingState:
    """Weights, optimiser, generators, hard windows and counters of a run after ``epoch``
    epochs. ``average`` (the running average of ``detector``'s weights) is what is validated;
    ``best_weights`` are its weights at ``best_epoch`` (None before the first epoch)."""

    detector: DigitDetector
    average: DigitDetector
    optimizer: torch.optim.Adam
    generator: torch.Generator
    rng: np.random.Generator
    hard: Windows
    epoch: int = 0
    best_loss: float = math.inf
    best_epoch: int = 0
    best_gain: float = 1.0
    best_weights: dict[str, torch.Tensor] | None = None
    train_losses: list[float] = dataclasses.field(default_factory=list)
    validation_losses: list[float] = dataclasses.field(default_factory=list)

    @classmethod
    def start(cls, config: DetectorConfig, *, learning_rate: float, seed: int,
              rng: np.random.Generator, init: DigitDetector | None = None) -> TrainingState:
        """A run before its first epoch: random weights (torch's global generator) or those of
        ``init``, a torch generator seeded with ``seed`` and the numpy generator ``rng``."""
        detector = DigitDetector(config)
        if init is not None:
            detector.load_state_dict(init.state_dict())
        detector.train()
        optimizer = torch.optim.Adam(detector.parameters(), lr=learning_rate)
        return cls(detector, copy.deepcopy(detector), optimizer,
                   torch.Generator().manual_seed(seed), rng, concatenate([]))

    def step(self, images: torch.Tensor, masks: torch.Tensor, targets: torch.Tensor) -> float:
        """One optimiser step on a batch (images (N, 1, h, w), masks (N, 1, h, w), targets
        (N, 10, h, w)), then the running average; returns the batch's masked MSE."""
        loss = masked_mse(self.detector(images), targets, masks)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for kept, current in zip(self.average.parameters(), self.detector.parameters(),
                                     strict=True):
                kept.lerp_(current, 1 - WEIGHT_AVERAGE_DECAY)
        return float(loss.detach())

    def end_epoch(self, train_loss: float, validation_loss: float, gain: float) -> None:
        """Count an epoch with its losses; keep the average's weights if they are the best."""
        self.epoch += 1
        self.train_losses.append(train_loss)
        self.validation_losses.append(validation_loss)
        if validation_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.best_gain = validation_loss, self.epoch, gain
            self.best_weights = {k: v.clone() for k, v in self.average.state_dict().items()}

    def add_hard_windows(self, found: Windows) -> None:
        """Add ``found`` to the pool of hard windows, dropping the oldest beyond HARD_POOL."""
        hard = concatenate([self.hard, found])
        self.hard = hard.subset(torch.arange(max(0, len(hard) - HARD_POOL), len(hard)))

    def best_detector(self) -> DigitDetector:
        """The average's weights of the best epoch with its output gain, in eval mode."""
        if self.best_weights is None:
            raise ValueError("no epoch gave a finite validation loss (no image to hold out for "
                             "validation, or the training diverged)")
        detector = copy.deepcopy(self.average)
        detector.load_state_dict(self.best_weights)
        apply_output_gain(detector, self.best_gain)
        return detector.eval()

    def save(self, path: str | Path, fingerprint: str) -> None:
        """Write the whole state to the checkpoint ``path`` of the run ``fingerprint``."""
        tensors = {f"detector.{k}": v for k, v in self.detector.state_dict().items()}
        tensors |= {f"average.{k}": v for k, v in self.average.state_dict().items()}
        tensors |= {f"best.{k}": v for k, v in (self.best_weights or {}).items()}
        for index, moments in self.optimizer.state_dict()["state"].items():
            tensors |= {f"optimizer.{index}.{k}": v for k, v in moments.items()}
        tensors |= {f"hard.{field.name}": getattr(self.hard, field.name)
                    for field in dataclasses.fields(Windows)}
        tensors["generator"] = self.generator.get_state()
        counters = {"epoch": self.epoch, "best_loss": self.best_loss,
                    "best_epoch": self.best_epoch, "best_gain": self.best_gain,
                    "train_losses": self.train_losses,
                    "validation_losses": self.validation_losses,
                    "numpy_rng": self.rng.bit_generator.state}
        save_checkpoint(path, tensors, counters, fingerprint)

    def restore(self, path: str | Path, fingerprint: str) -> None:
        """Load the state saved by :meth:`save` into this one (the generators in place).

        Raises :class:`~digit_detector.checkpoint.CheckpointError` when ``path`` is no
        checkpoint or one of another run.
        """
        tensors, counters = load_checkpoint(path, fingerprint)

        def part(prefix):
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        self.detector.load_state_dict(part("detector."))
        self.average.load_state_dict(part("average."))
        moments: dict[int, dict] = {}
        for key, value in part("optimizer.").items():
            index, name = key.split(".", 1)
            moments.setdefault(int(index), {})[name] = value
        self.optimizer.load_state_dict({"state": moments,
                                        "param_groups": self.optimizer.state_dict()["param_groups"]})
        self.generator.set_state(tensors["generator"])
        self.rng.bit_generator.state = counters["numpy_rng"]
        self.hard = Windows(**{field.name: tensors[f"hard.{field.name}"]
                               for field in dataclasses.fields(Windows)})
        self.best_weights = part("best.") or None
        self.epoch, self.best_loss = counters["epoch"], counters["best_loss"]
        self.best_epoch, self.best_gain = counters["best_epoch"], counters["best_gain"]
        self.train_losses = counters["train_losses"]
        self.validation_losses = counters["validation_losses"]
