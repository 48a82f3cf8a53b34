"""Guardrails: refuse models the rules cannot explain, and warn when an explanation leaks.

Relevance is ``input x (rule-modified) gradient`` (docs/method.md section 2), which is exact for
layers that carry a rule and for operations that are linear or positively homogeneous in the
input. Anything else (GELU, LayerNorm, softmax attention, a product of two input-dependent
tensors, a normalisation, BatchNorm not folded ...) would give an explanation that does not add
up to the score, silently. So, after the one forward pass and before any relevance pass, the
autograd graph from the input to the embedding is walked and every operation on it is checked
(docs/method.md section 4); each operation is charged to the innermost module that ran it, so
the error names the module and says what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

RESIDUAL_TOLERANCE = 0.01
"""Share of the score above which an explanation that does not add up is warned about."""

# Operations linear in every input-dependent operand, or positively homogeneous, for which
# gradient x input is the exact rule (docs/method.md section 2). Names of autograd nodes.
_PASS_THROUGH = frozenset({
    "ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "PermuteBackward0",
    "TransposeBackward0", "TransposeBackward1", "TBackward0", "ExpandBackward0", "CloneBackward0",
    "SliceBackward0", "SelectBackward0", "IndexBackward0", "GatherBackward0",
    "IndexSelectBackward0", "SqueezeBackward0", "SqueezeBackward1", "SqueezeBackward2",
    "SqueezeBackward3", "UnsqueezeBackward0", "SumBackward0", "SumBackward1", "MeanBackward0",
    "MeanBackward1", "NegBackward0", "ConstantPadNdBackward0", "RollBackward0", "FlipBackward0",
    "AvgPool1DBackward0", "AvgPool2DBackward0", "AvgPool3DBackward0",
    "AdaptiveAvgPool2DBackward0", "AdaptiveAvgPool3DBackward0", "ToCopyBackward0",
    "AliasBackward0", "SplitBackward0", "SplitWithSizesBackward0", "UnbindBackward0",
    "CatBackward0", "StackBackward0", "AsStridedBackward0", "Im2ColBackward0",
    "Col2ImBackward0", "RepeatBackward0", "UnfoldBackward0", "NarrowBackward0",
    "WhereBackward0", "ReluBackward0", "ThresholdBackward0", "LeakyReluBackward0",
    "AbsBackward0", "MaxPool1DWithIndicesBackward0", "MaxPool2DWithIndicesBackward0",
    "MaxPool3DWithIndicesBackward0", "AdaptiveMaxPool2DBackward0", "MaxBackward0",
    "MaxBackward1", "MinBackward0", "MinBackward1", "AmaxBackward0", "AminBackward0",
    "MaximumBackward0", "MinimumBackward0", "TopkBackward0", "SortBackward0",
})
# Additions: linear, but a constant operand (a functional bias) absorbs relevance.
_ADDITIONS = frozenset({"AddBackward0", "AddBackward1", "SubBackward0", "SubBackward1",
                        "RsubBackward0", "RsubBackward1"})
# Products: linear as long as at most one of these operands depends on the input.
_PRODUCTS = {
    "MulBackward0": (0, 1), "MulBackward1": (0,), "DivBackward1": (0,), "MmBackward0": (0, 1),
    "MvBackward0": (0, 1), "BmmBackward0": (0, 1), "AddmmBackward0": (1, 2),
    "ConvolutionBackward0": (0, 1), "DotBackward0": (0, 1),
}
_BIAS_OPERAND = {"AddmmBackward0": 0, "ConvolutionBackward0": 2}

_GATED = ("is not positively homogeneous, so input x gradient does not conserve its relevance; "
          "use an nn.GELU / nn.SiLU module with the Gate rule (composite=transformer_composite(), "
          "docs/method.md section 7), or ReLU")
_SMOOTH = ("is not positively homogeneous, so input x gradient does not conserve its relevance; "
           "replace it by ReLU")
ADVICE = {
    "GeluBackward0": "GELU " + _GATED,
    "SiluBackward0": "SiLU " + _GATED,
    "SigmoidBackward0": "a sigmoid " + _SMOOTH,
    "TanhBackward0": "tanh " + _SMOOTH,
    "EluBackward0": "ELU " + _SMOOTH,
    "SoftplusBackward0": "softplus " + _SMOOTH,
    "ClampBackward1": "clamp/hardtanh is not positively homogeneous; use ReLU",
    "HardtanhBackward0": "hardtanh is not positively homogeneous; use ReLU",
    "NativeLayerNormBackward0": "LayerNorm divides by an input-dependent norm; give the "
                                "nn.LayerNorm module the LayerNorm rule "
                                "(composite=transformer_composite(), docs/method.md section 7)",
    "SoftmaxBackward0": "softmax (attention) is not linear; use nn.MultiheadAttention with the "
                        "attention rule (composite=transformer_composite(), docs/method.md "
                        "section 7)",
    "ScaledDotProductAttention": "attention (softmax of products of input-dependent tensors) "
                                 "is not linear; give nn.MultiheadAttention the attention rule "
                                 "(composite=transformer_composite(), docs/method.md section 7)",
    "NativeBatchNormBackward0": "BatchNorm must be folded into the layer before it: use "
                                "bilrp(model, x_a, x_b, ...) or canonize(model, x) first "
                                "(docs/method.md section 5), with the model in eval mode",
    "DivBackward0": "a division by an input-dependent value (a normalisation such as "
                    "F.normalize): remove it from the model and explain the unnormalised "
                    "embedding with similarity='cosine' (docs/method.md section 6)",
    "LinalgVectorNormBackward0": "a norm of the input-dependent values (a normalisation): remove "
                                 "it and use similarity='cosine' (docs/method.md section 6)",
}
_PRODUCT_ADVICE = ("a product of two input-dependent tensors (attention scores, a gate) is not "
                   "linear; give the module a rule that fixes one factor "
                   "(docs/method.md section 7)")


class UnsupportedModelError(TypeError):
    """The model contains an operation no rule of the composite explains exactly."""


class ExplanationWarning(UserWarning):
    """Base category of the warnings of the explainer."""


class ConservationWarning(ExplanationWarning):
    """The relevance and the absorbed bias relevance do not add up to the score."""


class BiasRelevanceWarning(ExplanationWarning):
    """Biases absorb a noticeable part of the score: the input relevance sums to less."""


@dataclass
class GraphTags:
    """Which module ran each autograd node of one forward pass (innermost module wins).

    Registered as forward pre-/post-hooks on every module by :func:`tagging`; ``trusted`` holds
    the names of modules whose rule is responsible for their inside (their nodes are not checked).
    """

    names: dict = field(default_factory=dict)
    trusted: set = field(default_factory=set)
    _pending: list = field(default_factory=list)

    def enter(self, args: Iterable) -> None:
        self._pending.append({t.grad_fn for t in tensors_in(args) if t.grad_fn is not None})

    def leave(self, name: str, output) -> None:
        stop = self._pending.pop()
        nodes = [t.grad_fn for t in tensors_in(output) if t.grad_fn is not None]
        while nodes:
            node = nodes.pop()
            if node in stop or node in self.names:
                continue
            self.names[node] = name
            nodes.extend(child for child, _ in node.next_functions if child is not None)


def module_label(name: str, module: nn.Module) -> str:
    """How errors and warnings name a module: ``'layer1.0.conv1' (Conv2d)``."""
    return f"'{name}' ({type(module).__name__})" if name else type(module).__name__


def tagging(model: nn.Module, tags: GraphTags) -> list:
    """Register the hooks that fill ``tags`` on every module of ``model``; returns the handles.

    Call after the rule hooks are registered, so a module's tag covers what its rule adds.
    """
    handles = []
    for name, module in model.named_modules():
        label = module_label(name, module)
        handles.append(module.register_forward_pre_hook(
            lambda _module, args: tags.enter(args)))
        handles.append(module.register_forward_hook(
            lambda _module, _args, output, label=label: tags.leave(label, output)))
    return handles


_MODE_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def check_modes(model: nn.Module) -> None:
    """Refuse BatchNorm or dropout modules in training mode (batch statistics, random masks)."""
    training = [module_label(name, module) for name, module in model.named_modules()
                if module.training and isinstance(module, _MODE_DEPENDENT)]
    if training:
        raise UnsupportedModelError(
            f"{', '.join(training)} in training mode (BatchNorm would use batch statistics, "
            "dropout would drop at random): call model.eval()")


@dataclass(frozen=True)
class GraphReport:
    """What the check found besides errors: modules adding a constant that could not be made a
    bias leaf (a Python number) to input-dependent values; its share of the score is lost."""

    constant_adds: tuple[str, ...]


def check_graph(output: torch.Tensor, sources: Iterable[torch.Tensor],
                tags: GraphTags) -> GraphReport:
    """Check every operation between ``sources`` (input and reference leaves) and ``output``.

    Raises :class:`UnsupportedModelError` naming the first offending module and the remedy.
    """
    if output.grad_fn is None:
        raise UnsupportedModelError("the model's output does not depend on its input "
                                    "(is it computed under torch.no_grad() or detached?)")
    dependent = _dependent_nodes(output.grad_fn, {id(t) for t in sources})
    constant_adds = []
    for node, depends in dependent.items():
        owner = tags.names.get(node, "the model's forward")
        if not depends or owner in tags.trusted or hasattr(node, "variable"):
            continue
        operands = [None if child is None else dependent.get(child, False)
                    for child, _ in node.next_functions]
        problem = _problem(node.name(), operands)
        if problem == "constant":
            constant_adds.append(owner)
        elif problem is not None:
            raise UnsupportedModelError(f"module {owner}: {problem}")
    return GraphReport(constant_adds=tuple(dict.fromkeys(constant_adds)))


def _problem(name: str, operands: list[bool | None]) -> str | None:
    """None if the node is explained exactly, "constant" for a constant add, else the advice.

    ``operands``: per input of the node, whether it depends on the sources (None: no gradient
    flows there at all, e.g. a Python number, a frozen tensor or an absent bias).
    """
    if name in _PASS_THROUGH:
        return None
    if name in _ADDITIONS:
        return None if len(operands) == 2 and all(operands) else "constant"
    if name in _PRODUCTS:
        if sum(operands[i] is True for i in _PRODUCTS[name] if i < len(operands)) > 1:
            return _PRODUCT_ADVICE
        bias = _BIAS_OPERAND.get(name)
        if bias is not None and len(operands) > bias and operands[bias] is False:
            return "constant"
        return None
    if name == "DivBackward0" and operands[1] is not True:
        return None
    if "ScaledDotProduct" in name:
        return ADVICE["ScaledDotProductAttention"]
    return ADVICE.get(name, f"operation {name} has no LRP rule here; replace it by supported "
                            "layers (docs/method.md section 4 lists them)")


def _dependent_nodes(root, source_ids: set) -> dict:
    """For every node reachable from ``root``: whether it depends on one of the sources."""
    memo: dict = {}
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in memo:
            continue
        children = [child for child, _ in node.next_functions if child is not None]
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in memo)
            continue
        variable = getattr(node, "variable", None)
        memo[node] = (variable is not None and id(variable) in source_ids) or any(
            memo.get(child, False) for child in children)
    return memo


def tensors_in(value) -> Iterator[torch.Tensor]:
    """The tensors in a nested tuple / list / dict of module arguments or outputs."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from tensors_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from tensors_in(item)


def warn_if_leaking(y: float, explained: float, bias_relevance: float,
                    constant_adds: Iterable[str] = ()) -> float:
    """Warn when an explanation does not add up; returns the residual.

    ``explained`` is the sum of the input relevance and ``bias_relevance`` what the biases
    absorbed (exactly accounted). The residual ``|explained + bias - y| / |y|`` measures the
    rules' own conservation error (absolute error when ``y == 0``).
    """
    error = abs(explained + bias_relevance - y)
    residual = error / abs(y) if y != 0 else error
    if residual > RESIDUAL_TOLERANCE:
        where = ""
        if constant_adds:
            where = " Constants are added to input-dependent values in " + ", ".join(
                constant_adds) + "; make them layer biases to have them reported."
        warnings.warn(f"the explanation misses {100 * residual:.3g} % of the score {y:.6g}."
                      + where, ConservationWarning, stacklevel=3)
    share = abs(bias_relevance) / abs(y) if y != 0 else abs(bias_relevance)
    if share > RESIDUAL_TOLERANCE:
        warnings.warn(f"biases absorb {100 * share:.3g} % of the score {y:.6g}: the input "
                      "relevance sums to the score minus bias_relevance (docs/method.md "
                      "section 5)", BiasRelevanceWarning, stacklevel=3)
    return residual
