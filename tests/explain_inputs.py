"""Reproducible inputs and small known layers for the explanation tests."""

import torch
from torch import nn

F64 = torch.float64


def rand(*shape, seed=0, dtype=F64):
    """Uniform [0, 1) tensor of ``shape`` from its own generator seeded with ``seed``."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def linear(weight, bias=None):
    """A float64 ``nn.Linear`` with the given weight (out, in) and bias (out,) or none."""
    weight = torch.as_tensor(weight, dtype=F64)
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(torch.as_tensor(bias, dtype=F64))
    return layer
