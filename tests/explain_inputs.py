"""Reproducible random inputs for the explanation tests."""

import torch

F64 = torch.float64


def rand(*shape, seed=0, dtype=F64):
    """Uniform [0, 1) tensor of ``shape`` from its own generator seeded with ``seed``."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)
