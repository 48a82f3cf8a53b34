"""First-order LRP factors of every output dimension of an embedding, batched.

BiLRP factorises (docs/method.md section 2): ``BiLRP(y, x, x') = sum_m LRP(phi_m, x) (outer)
LRP(phi_m, x')``. This module computes the per-image factors ``LRP(phi_m, x)`` for all ``m`` with a
single forward pass and ``h`` seeded backward passes, batched according to ``strategy`` and
chunked so that the gradient buffers stay within a memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sphaera_tables.explain.canonizers import ConstantAddsAsBiases, Selector, select_output
from sphaera_tables.explain.guardrails import check_graph, check_modes
from sphaera_tables.explain.rules import Composite

STRATEGIES = ("auto", "vmap", "batch", "loop")
DEFAULT_MEMORY_BUDGET = 1 << 30


@dataclass(frozen=True)
class Factors:
    """First-order relevance of each embedding dimension on one input.

    Attributes
    ----------
    values : ndarray, shape (h, *input_shape)
        ``values[m]`` is the relevance map of ``phi_m`` (all zeros where ``phi_m == 0``).
    phi : ndarray, shape (h,)
        The embedding of the input, from the same forward pass; when only some ``outputs`` are
        explained, the others are set to 0 here, so that sums of relevance and ``phi`` agree.
    bias : ndarray, shape (h,), or None
        Relevance of ``phi_m`` absorbed by the model's biases (docs/method.md section 5); None
        where no bias was met.
    constant_adds : tuple of str
        Modules that add constants to input-dependent values outside any layer bias (their
        share is not in ``bias``; named in the warning when the explanation leaks).
    """

    values: np.ndarray
    phi: np.ndarray
    bias: np.ndarray | None = None
    constant_adds: tuple[str, ...] = ()

    def residual(self) -> np.ndarray:
        """Per-dimension conservation error ``|sum_i values[m, i] + bias_m - phi_m|``, (h,)."""
        totals = self.values.reshape(len(self.phi), -1).sum(axis=1)
        if self.bias is not None:
            totals = totals + self.bias
        return np.abs(totals - self.phi)


def lrp_factors(
    model: nn.Module,
    x: torch.Tensor,
    composite: Composite | None = None,
    *,
    outputs=None,
    strategy: str = "auto",
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
    select: Selector = None,
) -> Factors:
    """LRP maps of every embedding dimension ``phi_m`` of ``model`` on one input.

    Parameters
    ----------
    model : torch.nn.Module
        The embedding ``phi``; ``model(x)`` has ``h`` elements (any shape with batch size 1).
    x : torch.Tensor, shape (1, ...)
        One input; its dtype is used throughout (use float64 for exact checks).
    composite : Composite, optional
        Rules per layer. None (no rules) gives Gradient x Input, i.e. Hessian x Product in BiLRP.
    outputs : sequence of int, optional
        Dimensions to explain (default all); others, and those with ``phi_m == 0``, stay zero.
    strategy : {"auto", "vmap", "batch", "loop"}
        How the ``h`` backward passes are run: batched gradients over one forward ("vmap",
        ``autograd.grad(is_grads_batched=True)``), a replicated batch of the input ("batch"),
        or one backward per dimension ("loop"). "auto" picks "vmap": one forward only, and
        2-3x faster than "batch" in CPU time on conv/bigram and VGG models
        (``bench/bench_bilrp.py``).
    memory_budget_bytes : int
        Memory allowed for the batched passes; dimensions are processed in chunks sized from
        the activations the forward pass saved for backward. The floor is one dimension at a
        time (about 2.5 x the forward's activations), whatever the budget.
    select : int, str or callable, optional
        Picks the embedding from a model that returns a tuple, list or dict.

    Every operation between ``x`` and the embedding is checked before any relevance pass
    (:mod:`~sphaera_tables.explain.guardrails`): an operation no rule explains exactly raises
    :class:`~sphaera_tables.explain.guardrails.UnsupportedModelError`.

    Returns
    -------
    Factors
    """
    phi, chunks = relevance_chunks(
        model, x, composite, outputs=outputs, strategy=strategy,
        memory_budget_bytes=memory_budget_bytes, select=select,
    )
    values = torch.zeros((len(phi),) + tuple(x.shape[1:]), dtype=x.dtype)
    bias = torch.zeros(len(phi), dtype=x.dtype)
    for indices, relevance, absorbed in chunks:
        values[indices] = relevance.detach().cpu()
        bias[indices] = absorbed.detach().cpu()
    return Factors(values=values.numpy(), phi=phi.numpy(), bias=bias.numpy(),
                   constant_adds=chunks.constant_adds)


def gradient_factors(model: nn.Module, x: torch.Tensor, *, outputs=None, strategy: str = "auto",
                     memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
                     select: Selector = None) -> Factors:
    """Plain gradients ``d phi_m / dx`` for every dimension (for the Curvature baseline).

    Same parameters and batching as :func:`lrp_factors`; ``values[m]`` is the gradient.
    """
    phi, chunks = relevance_chunks(
        model, x, None, outputs=outputs, strategy=strategy,
        memory_budget_bytes=memory_budget_bytes, multiply_input=False, select=select,
    )
    values = torch.zeros((len(phi),) + tuple(x.shape[1:]), dtype=x.dtype)
    for indices, gradient, _ in chunks:
        values[indices] = gradient.detach().cpu()
    return Factors(values=values.numpy(), phi=phi.numpy())


def relevance_chunks(model: nn.Module, x: torch.Tensor, composite: Composite | None = None, *,
                     outputs=None, strategy: str = "auto",
                     memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
                     multiply_input: bool = True, select: Selector = None):
    """Run the forward pass, check the model, and return ``(phi, chunks)``.

    ``phi`` is the embedding, a tensor of shape (h,) (zero outside ``outputs``). ``chunks`` is
    an iterable of ``(indices, relevance, bias)`` with ``relevance`` of shape
    ``(len(indices), *x.shape[1:])``: the relevance maps (or gradients if ``multiply_input`` is
    False) of the dimensions ``indices``, and ``bias`` (len(indices),) the relevance absorbed
    by biases (zeros for gradients); ``chunks.constant_adds`` as in :class:`Factors`.
    Consume it once; chunk sizes follow ``memory_budget_bytes``. Used by :func:`lrp_factors` and
    by the pooled variant, which pools each chunk right away.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if x.shape[0] != 1:
        raise ValueError(f"x must hold one input (batch size 1), got shape {tuple(x.shape)}")
    if strategy == "auto":
        strategy = "vmap"
    composite = composite or Composite()
    x = x.detach()
    forward = _Forward(model, composite, x, select)
    phi = forward.output.detach().reshape(-1)
    wanted = range(len(phi)) if outputs is None else sorted({int(m) for m in outputs})
    for m in wanted:
        if not 0 <= m < len(phi):
            raise ValueError(f"output index {m} out of range for an embedding of size {len(phi)}")
    indices = [m for m in wanted if phi[m] != 0]
    if outputs is not None:
        explained = torch.zeros_like(phi)
        explained[indices] = phi[indices]
        phi = explained
    # Memory per seed, calibrated in bench/bench_bilrp.py: gradient buffers and temporaries of
    # a backward pass (plus a forward pass per copy for "batch") take about 2.5 x the saved
    # activations with either strategy.
    per_seed = 2.5 * forward.saved_bytes
    per_seed += 3 * x.numel() * x.element_size()
    chunk = max(1, int(memory_budget_bytes // max(per_seed, 1)))
    if strategy == "loop":
        chunk = 1
    if strategy == "batch":
        forward.release_graph()  # every chunk runs its own forward
    return phi.cpu(), _Chunks(forward, indices, chunk, strategy, multiply_input)


class _Forward:
    """One forward pass of ``model`` on ``x`` with the composite's rules attached.

    Records the bytes autograd saved for backward (the basis of the memory estimate) and checks
    the graph (the guardrails) before any backward pass.
    """

    def __init__(self, model, composite, x, select=None):
        self.model = model
        self.composite = composite
        self.x = x
        self.select = select
        check_modes(model)
        self.leaf, self.output, self.references, self.biases, self.saved_bytes = self.run(
            x, check=True)

    def release_graph(self):
        """Free the memory of this forward's graph (keeps the output values)."""
        self.output = self.output.detach()
        self.leaf = self.leaf.detach()
        self.references = []
        self.biases = []

    def run(self, x, check=False):
        """Forward ``x``: (leaf, embedding, reference leaves, bias leaves, saved bytes)."""
        leaf = x.clone().requires_grad_(True)
        saved = {}

        def pack(tensor):
            saved[(tensor.data_ptr(), tensor.numel())] = tensor.numel() * tensor.element_size()
            return tensor

        with (
            torch.enable_grad(),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
            self.composite.attached(self.model) as session,
            ConstantAddsAsBiases(session, leaf),
        ):
            output = select_output(self.model(leaf), self.select)
        references, biases = list(session.references), list(session.biases)
        if check:
            self.constant_adds = check_graph(
                output, [leaf, *references, *biases], session.tags).constant_adds
        return leaf, output, references, biases, sum(saved.values())


class _Chunks:
    """The relevance passes of one forward, chunk by chunk (see :func:`relevance_chunks`)."""

    def __init__(self, forward, indices, chunk, strategy, multiply_input):
        self.forward = forward
        self.indices = indices
        self.chunk = chunk
        self.strategy = strategy
        self.multiply_input = multiply_input
        self.constant_adds = forward.constant_adds

    def __iter__(self):
        for start in range(0, len(self.indices), self.chunk):
            selected = self.indices[start:start + self.chunk]
            if self.strategy == "batch":
                yield selected, *_batched_input(self.forward, selected, self.multiply_input)
            else:
                yield selected, *_seeded_backward(self.forward, selected, self.strategy,
                                                  self.multiply_input)


def _relevance(inputs, references, biases, gradients, multiply_input):
    """``(x * dphi/dx + sum(ref * dphi/dref), sum(bias * dphi/dbias))``, or the plain gradient.

    ``gradients`` hold one seed per row of their first axis; the bias relevance has one value
    per seed (zeros for plain gradients).
    """
    n_seeds = gradients[0].shape[0]
    absorbed = torch.zeros(n_seeds, dtype=inputs.dtype, device=inputs.device)
    if not multiply_input:
        return gradients[0], absorbed
    relevance = inputs * gradients[0]
    n_references = len(references)
    for reference, gradient in zip(references, gradients[1:1 + n_references], strict=True):
        relevance = relevance + reference * gradient
    for bias, gradient in zip(biases, gradients[1 + n_references:], strict=True):
        absorbed = absorbed + (bias * gradient).reshape(n_seeds, -1).sum(dim=1)
    return relevance, absorbed


def _leaves(forward, multiply_input):
    if not multiply_input:
        return [forward.leaf]
    return [forward.leaf, *forward.references, *forward.biases]


def _seeded_backward(forward, selected, strategy, multiply_input):
    """Backward passes over the one forward graph, one seed per dimension in ``selected``."""
    output = forward.output.reshape(-1)
    inputs = _leaves(forward, multiply_input)
    if strategy == "loop":
        (m,) = selected
        gradients = torch.autograd.grad(output[m], inputs, retain_graph=True, allow_unused=True)
        gradients = [_zeros_if_none(g, t)[None] for g, t in zip(gradients, inputs, strict=True)]
        relevance, absorbed = _relevance(forward.leaf, forward.references, forward.biases,
                                         gradients, multiply_input)
        return relevance.reshape((1,) + tuple(forward.x.shape[1:])), absorbed
    seeds = torch.zeros((len(selected), output.numel()), dtype=output.dtype, device=output.device)
    seeds[torch.arange(len(selected)), torch.as_tensor(selected)] = 1
    seeds = seeds.reshape((len(selected),) + tuple(forward.output.shape))
    gradients = torch.autograd.grad(
        forward.output, inputs, seeds, retain_graph=True, is_grads_batched=True,
        allow_unused=True,
    )
    gradients = [
        _zeros_if_none(g, t, len(selected)) for g, t in zip(gradients, inputs, strict=True)
    ]
    relevance, absorbed = _relevance(forward.leaf, forward.references, forward.biases, gradients,
                                     multiply_input)
    return relevance.reshape((len(selected),) + tuple(forward.x.shape[1:])), absorbed


def _batched_input(forward, selected, multiply_input):
    """One forward of ``len(selected)`` copies of the input, each seeded with its own dimension."""
    copies = forward.x.expand((len(selected),) + tuple(forward.x.shape[1:]))
    leaf, output, references, biases, _ = forward.run(copies)
    output = output.reshape(len(selected), -1)
    seeds = torch.zeros_like(output)
    seeds[torch.arange(len(selected)), torch.as_tensor(selected)] = 1
    return _seeded_pass(leaf, output, references, biases, seeds, multiply_input)


def seeded_relevance(model: nn.Module, x: torch.Tensor, seeds: torch.Tensor,
                     composite: Composite | None = None, *,
                     select: Selector = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LRP of ``<model(x)[b], seeds[b]>`` on ``x[b]`` for every input ``b`` of a batch.

    ``x`` (B, ...) holds B independent inputs (e.g. crops of a page) and ``seeds`` the
    relevance put on each one's output (shape of ``model(x)``): one forward and one backward
    pass for the whole batch. The model is checked as in :func:`lrp_factors`. Returns
    ``(relevance, bias)``: relevance (B, *x.shape[1:]) and the relevance absorbed by biases (B,).
    """
    forward = _Forward(model, composite or Composite(), x.detach(), select)
    return _seeded_pass(forward.leaf, forward.output, forward.references, forward.biases,
                        seeds.to(forward.output.dtype), True)


def _seeded_pass(leaf, output, references, biases, seeds, multiply_input):
    """One backward pass of a batch seeded with ``seeds``: ``_relevance`` per sample."""
    inputs = [leaf, *references, *biases] if multiply_input else [leaf]
    gradients = torch.autograd.grad(output, inputs, seeds, allow_unused=True)
    gradients = [_zeros_if_none(g, t) for g, t in zip(gradients, inputs, strict=True)]
    return _relevance(leaf, references, biases, gradients, multiply_input)


def _zeros_if_none(gradient, tensor, batch=None):
    if gradient is not None:
        return gradient
    shape = tuple(tensor.shape) if batch is None else (batch,) + tuple(tensor.shape)
    return torch.zeros(shape, dtype=tensor.dtype, device=tensor.device)
