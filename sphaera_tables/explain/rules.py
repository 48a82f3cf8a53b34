"""LRP rules for linear layers and the composite that attaches them to a model.

A rule changes only the *gradient* of the layer it is attached to, never its forward value:
the wrapped output is ``z.detach() + (z_mod - z_mod.detach()) * ratio`` with ``ratio`` detached,
so the value is exactly ``z`` while the gradient with respect to the layer input is the rule's
modified weights scaled by ``ratio``. Relevance is then ``input * gradient`` everywhere, which
makes every parameter-free positively homogeneous operation (ReLU, min, max, shifts, padding,
pooling, sums, flatten) follow the exact rule of docs/method.md section 2 without any hook, and makes
a module applied several times in one forward correct (every call is wrapped on its own).
Layers without a rule are differentiated as they are (LRP-0 for linear layers).

Biases (docs/method.md section 5): every bias of a Linear / Conv layer enters the rule's
modified output as a leaf tensor of its own, a constant input neuron, so the relevance a bias
absorbs is ``bias x gradient``, computed exactly and reported next to the input relevance.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from sphaera_tables.explain.guardrails import GraphTags, module_label, tagging

SUPPORTED_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _linear_forward(module, inputs, weight, bias):
    """Apply ``module``'s linear map with the given weight and bias (None for no bias)."""
    if isinstance(module, nn.Linear):
        return nn.functional.linear(inputs, weight, bias)
    return module._conv_forward(inputs, weight, bias)


def _affine(module, inputs, weight, bias, output, session):
    """``module``'s map with ``weight``, plus ``bias`` (a tensor or None) as a leaf of its own.

    The leaf has one copy per sample, shape (N, C, 1, ...) for a convolution and (N, 1, ..., C)
    for a linear layer, so batched relevance passes keep the samples apart.
    """
    z = _linear_forward(module, inputs, weight, None)
    if bias is None:
        return z
    return z + session.bias_leaf(bias, output, -1 if isinstance(module, nn.Linear) else 1)


def _safe_ratio(numerator, denominator):
    """``numerator / denominator`` with 0 where the denominator is 0 (no relevance flows there).

    A constant: computed from detached values, so it adds nothing to the autograd graph."""
    numerator, denominator = numerator.detach(), denominator.detach()
    zero = denominator == 0
    return (numerator / denominator.masked_fill(zero, 1)).masked_fill_(zero, 0)


def _rewire(output, z_mod, ratio):
    """Keep ``output``'s value exactly; route the gradient through ``z_mod`` scaled by ``ratio``."""
    ratio = ratio.detach()
    return output.detach() + (z_mod - z_mod.detach()) * ratio


def keep_value(output, z_mod):
    """``output``'s value exactly, with the gradient of ``z_mod`` (a recomputation of it)."""
    return output.detach() + (z_mod - z_mod.detach())


@dataclass(frozen=True)
class Gamma:
    """LRP-gamma: ``rho(w) = w + gamma * max(w, 0)``, favouring positive contributions.

    Meant for layers whose input is non-negative (after a ReLU). ``gamma = 0`` is LRP-0, which
    makes BiLRP equal to Hessian x Product.
    """

    gamma: float
    layers: ClassVar[tuple] = SUPPORTED_LAYERS

    def __post_init__(self):
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")

    def apply(self, module, inputs, output, session):
        weight = module.weight + self.gamma * module.weight.clamp(min=0)
        bias = None
        if module.bias is not None:
            bias = module.bias + self.gamma * module.bias.clamp(min=0)
        z_rho = _affine(module, inputs, weight, bias, output, session)
        return _rewire(output, z_rho, _safe_ratio(output, z_rho))


@dataclass(frozen=True)
class Epsilon:
    """LRP-epsilon: ``R_j = a_j sum_k w_jk R_k / (z_k + eps sign(z_k))``; ``eps = 0`` is LRP-0."""

    eps: float
    layers: ClassVar[tuple] = SUPPORTED_LAYERS

    def __post_init__(self):
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")

    def apply(self, module, inputs, output, session):
        sign = torch.where(output >= 0, torch.ones_like(output), -torch.ones_like(output))
        z = output
        if module.bias is not None:
            z = _affine(module, inputs, module.weight, module.bias, output, session)
        return _rewire(output, z, _safe_ratio(output, output + self.eps * sign))


@dataclass(frozen=True)
class Plain:
    """LRP-0 as the plain gradient, the bias made a leaf: what a biased layer without rule gets."""

    layers: ClassVar[tuple] = SUPPORTED_LAYERS

    def apply(self, module, inputs, output, session):
        return keep_value(output, _affine(module, inputs, module.weight, module.bias, output,
                                          session))


@dataclass(frozen=True)
class ZBox:
    """The zB rule for the input layer, with pixels bounded in ``[low, high]``.

    ``low`` and ``high`` are numbers or tensors broadcastable to the model input (per-channel
    bounds of normalised images, for example). The layer must read the model input itself: the
    bound terms are attributed to the input pixels, so a rule on any other layer is an error.
    """

    low: float | torch.Tensor
    high: float | torch.Tensor
    layers: ClassVar[tuple] = SUPPORTED_LAYERS

    def apply(self, module, inputs, output, session):
        if inputs is not session.model_input:
            raise ValueError(
                f"ZBox rule on layer '{session.name_of(module)}': this layer does not read the "
                "model input directly; use Gamma or Epsilon here"
            )
        low = torch.as_tensor(self.low, dtype=inputs.dtype, device=inputs.device)
        high = torch.as_tensor(self.high, dtype=inputs.dtype, device=inputs.device)
        low = low.expand_as(inputs).clone().requires_grad_(True)
        high = high.expand_as(inputs).clone().requires_grad_(True)
        session.references.extend([low, high])
        w_pos = module.weight.clamp(min=0)
        w_neg = module.weight.clamp(max=0)
        # The three maps as one over [x, low, high] stacked on the input axis (group by group
        # for a grouped convolution): one backward pass through the layer instead of three (a
        # convolution's to a one-channel input is slow on the CPU).
        axis = inputs.dim() - 1 if isinstance(module, nn.Linear) else 1
        groups = getattr(module, "groups", 1)
        stacked = torch.cat([t.unflatten(axis, (groups, -1)) for t in (inputs, low, high)],
                            dim=axis + 1).flatten(axis, axis + 1)
        z_box = _affine(module, stacked, torch.cat([module.weight, -w_pos, -w_neg], dim=1),
                        module.bias, output, session)
        return _rewire(output, z_box, _safe_ratio(output, z_box))


@dataclass
class RuleSession:
    """State of one attachment of a composite: the model input and the zB reference leaves.

    ``references`` collects the bound tensors created by :class:`ZBox` in the last forward; the
    input relevance is ``x * dy/dx + sum(ref * dy/dref)``. ``biases`` collects the bias leaves
    (relevance absorbed by biases: ``sum(bias * dy/dbias)``); ``tags`` says which module ran
    each operation, for the guardrails.
    """

    names: dict = field(default_factory=dict)
    model_input: torch.Tensor | None = None
    references: list = field(default_factory=list)
    biases: list = field(default_factory=list)
    tags: GraphTags = field(default_factory=GraphTags)
    paused: int = 0

    def name_of(self, module):
        return self.names.get(id(module), type(module).__name__)

    def bias_leaf(self, bias, output, channel_axis):
        """``bias`` as a new leaf broadcastable to ``output``, one copy per sample.

        Shape (N, 1, ..., C, ..., 1) with C on ``channel_axis`` of ``output``, so batched
        relevance passes keep the samples apart; its relevance is counted as absorbed by biases.
        """
        axis = channel_axis % output.dim()
        shape = [output.shape[0]] + [1] * (output.dim() - 1)
        shape[axis] = bias.numel()
        view = [1] * output.dim()
        view[axis] = -1
        leaf = bias.detach().reshape(view).expand(shape).clone().requires_grad_(True)
        self.biases.append(leaf)
        return leaf


class Composite:
    """Map layer names or layer types to rules.

    Parameters
    ----------
    rules : dict
        Keys are module names as in ``model.named_modules()`` (``fnmatch`` wildcards allowed,
        e.g. ``"detector.*"``, which then select only the layers the rule applies to) or module
        types (``torch.nn.Conv2d``); values are rule objects (:class:`Gamma`, :class:`Epsilon`,
        :class:`ZBox` for Linear and Conv1d/2d/3d layers; the rules of
        :mod:`~sphaera_tables.explain.transformer_rules` for GELU / SiLU, LayerNorm and
        attention). A name key wins over a type key; among keys of one kind the first match in
        dict order wins. Linear / Conv layers without a rule keep their plain gradient (LRP-0).
    """

    def __init__(self, rules=None):
        self.rules = dict(rules or {})
        for key in self.rules:
            if not isinstance(key, str | type):
                raise TypeError(f"composite keys are layer names or types, got {key!r}")

    def rule_for(self, name, module):
        """The rule for the module called ``name``, or None."""
        for key, rule in self.rules.items():
            if not isinstance(key, str):
                continue
            if key == name:
                return rule
            if fnmatch.fnmatchcase(name, key) and isinstance(module, rule.layers):
                return rule
        for key, rule in self.rules.items():
            if isinstance(key, type) and isinstance(module, key):
                return rule
        return None

    @contextlib.contextmanager
    def attached(self, model: nn.Module) -> Iterator[RuleSession]:
        """Attach the rules to ``model`` for the duration of the block; yields the session.

        The model's forward values are unchanged; only its gradients follow the rules.
        """
        session = RuleSession(names={id(m): n for n, m in model.named_modules()})

        def remember_input(module, args):
            session.model_input = args[0]
            session.references.clear()
            session.biases.clear()

        handles = [model.register_forward_pre_hook(remember_input)]
        try:
            for name, module in model.named_modules():
                rule = self.rule_for(name, module)
                if rule is not None and not isinstance(module, rule.layers):
                    raise TypeError(
                        f"rule {rule!r} matched layer '{name}' of type {type(module).__name__}; "
                        "it applies to " + ", ".join(t.__name__ for t in rule.layers) + " only"
                    )
                if rule is None and isinstance(module, SUPPORTED_LAYERS) and module.bias is not None:
                    rule = Plain()
                if isinstance(module, SUPPORTED_LAYERS) or rule is not None:
                    session.tags.trusted.add(module_label(name, module))
                if rule is not None:
                    handles.append(module.register_forward_pre_hook(_pause(session)))
                    handles.append(module.register_forward_hook(_rule_hook(rule, session),
                                                                with_kwargs=True))
            handles += tagging(model, session.tags)
            yield session
        finally:
            for handle in handles:
                handle.remove()


def _pause(session):
    """Pre-hook: inside a module with a rule, its rule alone answers for the operations."""

    def hook(module, args):
        session.paused += 1

    return hook


def _rule_hook(rule, session):
    def hook(module, args, kwargs, output):
        try:
            if hasattr(rule, "apply_call"):
                return rule.apply_call(module, args, kwargs, output, session)
            return rule.apply(module, args[0], output, session)
        finally:
            session.paused -= 1

    return hook
