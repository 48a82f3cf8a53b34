"""Training checkpoints: the whole state of a training run after an epoch, to resume it.

A checkpoint is a safetensors file (the tensors: weights, optimiser moments, the pool of hard
windows, the torch generator) whose metadata holds the rest as JSON (counters, losses, the
numpy generator) and a fingerprint of the run's data and settings, so that a run never goes on
from the state of another. Nothing in the file is ever executed when it is read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from digit_detector.weights import write_safetensors

FORMAT_KEY = "format"
FORMAT_VALUE = "sphaera-detector-training/1"
FINGERPRINT_KEY = "fingerprint"
STATE_KEY = "state"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and what to do."""


def run_fingerprint(**settings) -> str:
    """SHA-256 of the JSON of a run's data hash and settings (those that change its result)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def weights_hash(detector: torch.nn.Module) -> str:
    """SHA-256 of a network's weights (a fine-tuning run's starting point, for its fingerprint)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(detector.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], state: dict,
                    fingerprint: str) -> Path:
    """Write ``tensors`` and the JSON-serialisable ``state`` atomically to ``path``."""
    metadata = {FORMAT_KEY: FORMAT_VALUE, FINGERPRINT_KEY: fingerprint,
                STATE_KEY: json.dumps(state)}
    return write_safetensors(tensors, metadata, path)


def load_checkpoint(path: str | Path, fingerprint: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint of the run with ``fingerprint``: its tensors and state.

    Raises
    ------
    CheckpointError
        The file is not a training checkpoint, is damaged, or belongs to a run with other data
        or settings.
    """
    metadata = _read(path, lambda handle: handle.metadata() or {})
    if metadata.get(FORMAT_KEY) != FORMAT_VALUE or STATE_KEY not in metadata:
        raise CheckpointError(f"{path}: not a training checkpoint; delete it to start the "
                              "training afresh")
    if metadata.get(FINGERPRINT_KEY) != fingerprint:
        raise CheckpointError(
            f"{path}: checkpoint of a training run with other data or settings (annotations, "
            "negatives, seed, steps per epoch, validation share, architecture or starting "
            "weights); run the same command as before to resume it, or delete it to start "
            "afresh")
    tensors = _read(path, lambda handle: {name: handle.get_tensor(name) for name in handle.keys()})
    return tensors, json.loads(metadata[STATE_KEY])


def _read(path, what):
    """``what(handle)`` on the opened safetensors file; a damaged file is a CheckpointError."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return what(handle)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable training checkpoint ({error}); "
                              "delete it to start the training afresh") from None
