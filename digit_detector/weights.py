"""Weight files: safetensors tensors plus the JSON configuration in the file's metadata.

safetensors never executes code while reading, so a hostile file can at worst be rejected.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from digit_detector.model import DetectorConfig, DigitDetector

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "default.safetensors"
"""Shipped weights: synthetic pages in the training typefaces only, plus the real non-table
pages as negatives. The commands that reproduce them bit for bit are in the README ("The
detector's default weights") and in ``tables train-detector --help``."""
CONFIG_KEY = "digit_detector_config"
FORMAT_KEY = "format"
FORMAT_VALUE = "sphaera-digit-detector/1"


class WeightFileError(ValueError):
    """A weight file that is missing, unreadable or not a digit detector; message names it."""


def save_detector(detector: DigitDetector, path: str | Path) -> Path:
    """Write ``detector`` to ``path`` as safetensors with its configuration as JSON metadata.

    The file is written beside ``path`` and then renamed onto it, so a reader never sees a
    half-written file (others may be reading the shipped weights meanwhile)."""
    metadata = {FORMAT_KEY: FORMAT_VALUE, CONFIG_KEY: detector.config.to_json()}
    return write_safetensors(detector.state_dict(), metadata, path)


def write_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str],
                      path: str | Path) -> Path:
    """Write ``tensors`` with string ``metadata`` to ``path`` as safetensors, atomically: the
    file is written beside ``path`` and then renamed onto it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the file is for everyone
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def load_detector(path: str | Path | None = None) -> DigitDetector:
    """Read a detector written by :func:`save_detector`; ``None`` loads the shipped default.

    Raises
    ------
    WeightFileError
        The file is missing, not safetensors (e.g. a pickle), truncated, lacks the configuration,
        or holds tensors of the wrong names or shapes. Nothing in the file is ever executed.
    """
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise WeightFileError(f"{path}: no such weight file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightFileError(f"{path}: not a safetensors weight file ({reason})") from None
    if metadata.get(FORMAT_KEY) != FORMAT_VALUE or CONFIG_KEY not in metadata:
        raise WeightFileError(f"{path}: safetensors file without a digit detector configuration")
    try:
        config = DetectorConfig.from_json(metadata[CONFIG_KEY])
    except ValueError as error:
        raise WeightFileError(f"{path}: {error}") from None
    detector = DigitDetector(config)
    expected = detector.state_dict()
    if set(tensors) != set(expected):
        raise WeightFileError(
            f"{path}: tensors {sorted(tensors)} do not match the configured network "
            f"{sorted(expected)}"
        )
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape or not tensor.dtype.is_floating_point:
            raise WeightFileError(
                f"{path}: tensor {name} has shape {tuple(tensor.shape)} {tensor.dtype}, "
                f"expected {tuple(expected[name].shape)} float"
            )
        if not torch.isfinite(tensor).all():
            raise WeightFileError(f"{path}: tensor {name} holds non-finite values")
    detector.load_state_dict({k: v.float() for k, v in tensors.items()})
    detector.eval()
    return detector
