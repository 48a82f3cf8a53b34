"""Canonizers: rewrite a model into an equivalent one that the LRP rules explain exactly.

docs/method.md section 5. BatchNorm (eval mode) is an affine map per channel; folded into the
Linear / Conv layer that feeds it, the rules see the effective weights (LRP-gamma favours the
positive *effective* weights) and the shift becomes that layer's bias, whose relevance is
reported. Folding works on a copy: the user's model is never modified. Model outputs that are
tuples or dicts are reduced to the embedding by a selector.

Residual additions need no rewriting here: relevance is input x gradient, and the gradient of
``a + b`` hands each summand ``a * g`` and ``b * g``, i.e. the output relevance split in
proportion to the summands (the LRP rule for a sum), whatever the branches contain.

Constants added to input-dependent values outside a layer (a position embedding ``x + pos``)
are turned into bias leaves during the forward (:class:`ConstantAddsAsBiases`), so their share
is reported with the biases instead of being lost.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from sphaera_tables.explain.guardrails import (
    UnsupportedModelError,
    check_modes,
    module_label,
    tensors_in,
)

Selector = int | str | Callable[[Any], torch.Tensor] | None
"""Picks the embedding from a model output: an index (tuple / list), a key (dict) or a function."""

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_FOLDABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def select_output(output: Any, select: Selector) -> torch.Tensor:
    """The embedding tensor in ``output``; a clear error when a selector is missing or wrong."""
    if select is None:
        if isinstance(output, torch.Tensor):
            return output
        kind = type(output).__name__
        size = f" of {len(output)} items" if hasattr(output, "__len__") else ""
        raise UnsupportedModelError(
            f"the model returns a {kind}{size}, not a tensor: pass select= an index, a key or a "
            "function that picks the embedding (e.g. select=0 or select='pooler_output')")
    try:
        chosen = select(output) if callable(select) else output[select]
    except (IndexError, KeyError, TypeError) as error:
        raise UnsupportedModelError(
            f"select={select!r} cannot pick the embedding from a {type(output).__name__} "
            f"({error})") from error
    if not isinstance(chosen, torch.Tensor):
        raise UnsupportedModelError(f"select={select!r} picked a {type(chosen).__name__}, "
                                    "not a tensor")
    return chosen


def canonize(model: nn.Module, x: torch.Tensor, select: Selector = None) -> nn.Module:
    """A copy of ``model`` with every BatchNorm folded into the Linear / Conv layer feeding it.

    ``x`` (one example input) shows which layer feeds which BatchNorm; the folded copy is
    checked to give the same embedding on ``x``. Raises :class:`UnsupportedModelError` for a
    model in training mode or a BatchNorm whose input is not the output of a foldable layer.
    """
    check_modes(model)
    folded = copy.deepcopy(model)
    pairs = _feeding_layers(folded, x)
    if not pairs:
        return folded
    for layer, norm, name in pairs:
        _fold(layer, norm)
        _replace(folded, name, nn.Identity())
    with torch.no_grad():
        before = select_output(model(x), select)
        after = select_output(folded(x), select)
    scale = before.abs().max().clamp(min=1e-30)
    if not torch.allclose(before, after, rtol=0, atol=1e-5 * float(scale)):
        raise UnsupportedModelError("folding BatchNorm changed the model's output: a folded "
                                    "layer's output is also used elsewhere; fold by hand")
    return folded


def _feeding_layers(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, nn.Module, str]]:
    """``(layer, batch_norm, batch_norm_name)`` for every BatchNorm, from one forward on ``x``."""
    produced: dict[int, nn.Module] = {}
    pairs: list = []
    names = {id(m): n for n, m in model.named_modules()}

    def remember(module, _args, output):
        produced[id(output)] = module

    def pair(module, args):
        layer = produced.get(id(args[0]))
        if layer is None:
            raise UnsupportedModelError(
                f"BatchNorm {module_label(names[id(module)], module)} does not read the output "
                "of a Linear / Conv layer, so it cannot be folded; move it after one")
        pairs.append((layer, module, names[id(module)]))

    handles = [m.register_forward_hook(remember) for m in model.modules()
               if isinstance(m, _FOLDABLE)]
    handles += [m.register_forward_pre_hook(pair) for m in model.modules()
                if isinstance(m, _BATCH_NORMS)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return pairs


def _fold(layer: nn.Module, norm: nn.Module) -> None:
    """Fold ``norm`` (eval mode) into ``layer`` in place: ``w <- s w``, ``b <- s (b - mu) + beta``.

    ``s = gamma / sqrt(var + eps)``, per output channel (docs/method.md section 5).
    """
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps) if norm.affine else \
            1 / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias if norm.affine else torch.zeros_like(scale)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(scale)
        new_bias = scale * (bias - norm.running_mean) + shift
        layer.weight.mul_(scale.reshape((-1,) + (1,) * (layer.weight.dim() - 1)))
        if layer.bias is None:
            layer.bias = nn.Parameter(new_bias.to(layer.weight.dtype))
        else:
            layer.bias.copy_(new_bias)


def _replace(model: nn.Module, name: str, replacement: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, replacement)


_ADDITIONS = frozenset({torch.add, torch.sub, torch.Tensor.add, torch.Tensor.sub,
                        torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.__sub__,
                        torch.Tensor.__rsub__})


_CONCATENATIONS = frozenset({torch.cat, torch.concat, torch.stack})


class ConstantAddsAsBiases(TorchFunctionMode):
    """``value + constant``, with ``value`` depending on the input and ``constant`` a tensor
    that does not, becomes ``value + leaf`` during the forward: the leaf (the constant, one copy
    per sample, in the shape of the sum) is appended to ``session.biases``. Constants
    concatenated with input-dependent values (a class token) become leaves the same way.

    Dependence on the input is followed op by op from ``leaf`` (the model input). Conversions
    pause inside modules with a rule (their rule makes its own leaves).
    """

    def __init__(self, session, leaf: torch.Tensor):
        super().__init__()
        self.session = session
        self.dependent: dict[int, weakref.ref] = {id(leaf): weakref.ref(leaf)}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.session.paused == 0:
            if func in _ADDITIONS and len(args) == 2 and not kwargs:
                args = self._as_leaves(*args)
            elif func in _CONCATENATIONS and args and isinstance(args[0], list | tuple):
                args = (self._concatenated_as_leaves(args[0]), *args[1:])
        result = func(*args, **kwargs)
        if any(self._depends(t) for t in tensors_in((args, kwargs))):
            for tensor in tensors_in(result):
                self.dependent[id(tensor)] = weakref.ref(tensor)
        return result

    def _depends(self, tensor: torch.Tensor) -> bool:
        reference = self.dependent.get(id(tensor))
        return reference is not None and reference() is tensor

    def _as_leaves(self, a, b):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return a, b
        if self._depends(a) == self._depends(b) or not (a.is_floating_point()
                                                        and b.is_floating_point()):
            return a, b
        shape = torch.broadcast_shapes(a.shape, b.shape)

        return (a, self._leaf(b, shape)) if self._depends(a) else (self._leaf(a, shape), b)

    def _concatenated_as_leaves(self, parts):
        if not any(isinstance(t, torch.Tensor) and self._depends(t) for t in parts):
            return parts
        return [self._leaf(t, t.shape) if isinstance(t, torch.Tensor) and t.is_floating_point()
                and not self._depends(t) else t for t in parts]

    def _leaf(self, constant, shape):
        """A copy of ``constant`` expanded to ``shape``, a new leaf counted with the biases."""
        copy = constant.detach().expand(shape).clone().requires_grad_(True)
        self.session.biases.append(copy)
        return copy
