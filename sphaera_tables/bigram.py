"""The hard-coded bigram network on top of the digit detector (method.md section 3).

For every ordered digit pair (j, k) the network asks, at every pixel x of the working-scale page,
"is there a digit j at x AND a digit k one digit pitch to its right?":

    a_jk(x) = max_tau min(a_j(x), a_k(x + tau))          tau in a few offsets (dx, dy)
    phi_jk  = sum_x gate(a_jk(x) - t) / unit             t: activation threshold

The offsets step about one pitch to the right (the paper's horizontal shifts) and, unlike the
paper, also a little up and down: old-style figures, the rule in early-modern print, hang 3 4 5
7 9 below the line and raise 6 8 above it, so the centre of the next digit of a number can sit
up to half a digit height higher or lower than that of the one before.

``phi`` (100 values, index ``10 * j + k``) is a translation-invariant bigram count: ``unit`` is
the mass that one ideal detector blob leaves after the threshold, so a clean page with n
occurrences of "jk" gives phi_jk close to n.

Why a sparse implementation: ``min`` can only exceed the threshold where ``a_j(x) > t``, and the
detector's maps are near zero almost everywhere. The head therefore gathers the few "active"
pixels (any map above t) and computes the pairs there, and at each only for the digits j whose
map is above t (one or two of the ten), instead of 100 full-page maps per offset. The result
equals the dense formula to float rounding (tests compare with a dense reference).

Relevance (BiLRP) through the head: ``min`` and ``max`` are winner-take-all under gradient x
input, and the threshold is a gate that hands the surviving activation ``relu(m - t)`` to the
winning map pixel as a whole (the LRP rule for a bias term normalised without the bias). The
gate is written so that its gradient is ``relu(m - t) / m``; gradient x input then conserves
``sum_x relu(m - t)`` exactly, and any autograd-based explainer sees a conservative head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

N_DIGITS = 10
N_BIGRAMS = N_DIGITS * N_DIGITS
BIGRAM_LABELS = tuple(f"{j}{k}" for j in range(N_DIGITS) for k in range(N_DIGITS))


def bigram_offsets(digit_pitch_px: float, digit_height_px: float,
                   step_factors=(0.8, 1.0, 1.2), rise_factors=(0.0,)) -> tuple[tuple[int, int], ...]:
    """Offsets ``(dx, dy)`` (working-scale px, right and down) at which "the next digit" is
    looked for: every step (a multiple of the detector's digit pitch) with every rise (a
    multiple of its digit height), so a table printed small and one printed large (both
    brought to the working scale) give the same features.
    """
    steps = sorted({max(1, round(digit_pitch_px * f)) for f in step_factors})
    rises = sorted({round(digit_height_px * f) for f in rise_factors})
    return tuple((dx, dy) for dx in steps for dy in rises)


def blob_unit(peak: float, sigma: float, threshold: float) -> float:
    """Mass of one ideal Gaussian blob above ``threshold``: the count unit of phi.

    ``sum_x relu(peak * exp(-|x|^2 / 2 sigma^2) - threshold)`` on the integer grid.
    """
    radius = int(math.ceil(4 * sigma)) + 1
    coords = torch.arange(-radius, radius + 1, dtype=torch.float64)
    r2 = coords[:, None] ** 2 + coords[None, :] ** 2
    blob = peak * torch.exp(-r2 / (2 * sigma**2))
    mass = torch.clamp(blob - threshold, min=0).sum().item()
    if mass <= 0:
        raise ValueError(f"threshold {threshold} is above the blob peak {peak}: no bigram can count")
    return mass


@dataclass(frozen=True)
class ActivePixels:
    """The pixels of a (1, 10, H, W) map stack where some map exceeds the threshold.

    ``flat``: (n,) sorted linear indices ``y * W + x``; ``neighbours``: (n_offsets, n) index of
    the pixel ``(dx, dy)`` away inside the active set, or ``n`` (a zero row) when that pixel is
    inactive or off the page.
    """

    flat: torch.Tensor
    neighbours: torch.Tensor
    height: int
    width: int

    @classmethod
    def from_maps(cls, maps: torch.Tensor, threshold: float, offsets) -> ActivePixels:
        if maps.dim() != 4 or maps.shape[0] != 1 or maps.shape[1] != N_DIGITS:
            raise ValueError(f"expected digit maps of shape (1, 10, H, W), got {tuple(maps.shape)}")
        _, _, height, width = maps.shape
        with torch.no_grad():
            # compared in float64 whatever the maps' type: the same pixels for float32 maps
            # as for the same maps converted to float64
            strongest = maps[0].amax(dim=0).reshape(-1).double()
            flat = torch.nonzero(strongest > threshold).flatten()
        n = flat.numel()
        xs = flat % width
        neighbours = []
        for dx, dy in offsets:
            target = flat + dy * width + dx  # off the top or bottom: matches no active pixel
            pos = torch.searchsorted(flat, target).clamp(max=max(n - 1, 0))
            found = (n > 0) & (xs + dx < width)
            if n > 0:
                found = found & (flat[pos] == target)
            neighbours.append(torch.where(found, pos, torch.full_like(pos, n)))
        return cls(flat, torch.stack(neighbours) if neighbours else flat[None], height, width)

    @property
    def count(self) -> int:
        return self.flat.numel()

    def gather(self, maps: torch.Tensor) -> torch.Tensor:
        """Map values at the active pixels plus a zero column: (1, 10, n + 1), differentiable.

        Laid out like an image (channels first, pixels last), so an explainer's label map over
        the last axis pools relevance per pixel, summing the 10 digit maps.
        """
        values = maps[0].reshape(N_DIGITS, -1)[:, self.flat]
        return torch.cat([values, values.new_zeros(N_DIGITS, 1)], dim=1)[None]

    def coordinates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y) working-scale pixel coordinates of the active pixels."""
        return self.flat % self.width, self.flat // self.width


def conservative_gate(m: torch.Tensor, threshold: float) -> torch.Tensor:
    """``relu(m - threshold)`` whose gradient is ``relu(m - threshold) / m``.

    Forward value unchanged; gradient x input hands the whole surviving activation to ``m``,
    so the thresholded head conserves relevance (written with ``detach`` so that batched
    gradients and ``torch.func`` transforms see ordinary operations).
    """
    out = torch.clamp(m - threshold, min=0)
    ratio = (out / torch.where(m > 0, m, torch.ones_like(m))).detach()
    return m * ratio


class BigramPairs(nn.Module):
    """phi from the active-pixel values: (1, 10, n + 1) -> (1, 100).

    The input is the output of :meth:`ActivePixels.gather` with a batch axis, so that an explainer
    can treat these values as the model input (relevance per active pixel and digit map).
    """

    def __init__(self, active: ActivePixels, threshold: float, unit: float):
        super().__init__()
        self.active = active
        self.threshold = threshold
        self.unit = unit

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        self._check(values)
        entries = self._entries(values[0].T)
        return self._counts(entries, *self._pair_operands(values[0].T, entries))[None]

    def pixel_relevance(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Relevance of every bigram count on every active pixel, in one backward pass.

        Returns ``(phi, relevance)``: phi (100,), relevance (100, n + 1) with ``relevance[m, i]``
        the gradient x input of ``phi_m`` on pixel ``i`` (its 10 map values summed). Equal to
        running 100 seeded backward passes through :meth:`forward`, but each pair-space entry
        ``(x, j, k)`` feeds only ``phi_jk``, so making the pair-space operands leaves of the graph
        separates the 100 outputs and a single backward pass yields them all.
        """
        phi, (pixels, digits), operands, grads = self._operand_gradients(values)
        n = self.active.count
        bigrams = N_DIGITS * digits[:, None] + torch.arange(N_DIGITS)  # (m, 10)
        relevance = values.new_zeros(N_BIGRAMS * (n + 1))
        targets = [pixels, *(neighbour[pixels] for neighbour in self.active.neighbours)]
        for target, grad, operand in zip(targets, grads, operands, strict=True):
            relevance.index_add_(0, (bigrams * (n + 1) + target[:, None]).reshape(-1),
                                 (grad * operand).reshape(-1))
        return phi.detach(), relevance.reshape(N_BIGRAMS, n + 1)

    def map_gradients(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of every bigram count on every map value, in one backward pass.

        Returns ``(phi, gradients)``: phi (100,), gradients (100, 10, n + 1) with
        ``gradients[m, c, i] = d phi_m / d values[0, c, i]`` (as 100 seeded backward passes
        through :meth:`forward` give; separated as in :meth:`pixel_relevance`).
        """
        phi, (pixels, digits), _, grads = self._operand_gradients(values)
        n = self.active.count
        bigrams = N_DIGITS * digits[:, None] + torch.arange(N_DIGITS)  # (m, 10)
        gradients = values.new_zeros(N_BIGRAMS * N_DIGITS * (n + 1))  # (bigram, map, pixel)
        left_map, right_map = digits[:, None].expand(-1, N_DIGITS), torch.arange(N_DIGITS)
        sides = [(pixels, left_map), *((neighbour[pixels], right_map)
                                       for neighbour in self.active.neighbours)]
        for (target, read_map), grad in zip(sides, grads, strict=True):
            flat = (bigrams * N_DIGITS + read_map) * (n + 1) + target[:, None]
            gradients.index_add_(0, flat.reshape(-1), grad.reshape(-1))
        return phi, gradients.reshape(N_BIGRAMS, N_DIGITS, n + 1)

    def _operand_gradients(self, values: torch.Tensor):
        """``(phi, entries, operands, gradients)``: the pair-space entries and operands (leaves)
        and the gradient of ``phi.sum()`` on each operand; an entry ``(x, j)`` of an operand at
        column ``k`` feeds ``phi_jk`` only."""
        self._check(values)
        pixel_values = values[0].T.detach()
        entries = self._entries(pixel_values)
        with torch.enable_grad():
            operands = [op.detach().requires_grad_() for op in
                        self._pair_operands(pixel_values, entries)]
            phi = self._counts(entries, *operands)
            grads = torch.autograd.grad(phi.sum(), operands)
        return phi.detach(), entries, [op.detach() for op in operands], grads

    def _check(self, values: torch.Tensor) -> None:
        if values.dim() != 3 or values.shape[:2] != (1, N_DIGITS):
            raise ValueError(f"expected values of shape (1, 10, n + 1), got {tuple(values.shape)}")

    def _entries(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pixels, digits)``, (m,) each: the active pixels x and digits j with ``a_j(x)``
        above the threshold. ``min(a_j(x), .)`` is at most ``a_j(x)``, so the pairs of every
        other (x, j) are gated to zero, with zero gradient: leaving them out changes neither phi
        nor any relevance (only the order in which phi's terms are summed)."""
        n = self.active.count
        return torch.nonzero(values[:n].detach() > self.threshold, as_tuple=True)

    def _pair_operands(self, values: torch.Tensor, entries) -> list[torch.Tensor]:
        """The digit-j side and, per offset, the digit-k side, each (m, 10) in pair space: row
        ``e`` holds the pairs of entry ``e = (x, j)`` with every digit k."""
        pixels, digits = entries
        left = values[pixels, digits][:, None].expand(-1, N_DIGITS)
        rights = [values[neighbour[pixels]] for neighbour in self.active.neighbours]
        return [left, *rights]

    def _counts(self, entries, left: torch.Tensor, *rights: torch.Tensor) -> torch.Tensor:
        """phi (100,) from the pair-space operands: max over offsets of min, gated, summed."""
        best = None
        for right in rights:
            pair = torch.minimum(left, right)
            best = pair if best is None else torch.maximum(best, pair)
        gated = conservative_gate(best, self.threshold)
        digits = entries[1]
        counts = torch.stack([gated[digits == j].sum(dim=0) for j in range(N_DIGITS)])
        return counts.reshape(N_BIGRAMS) / self.unit


class BigramHead(nn.Module):
    """Digit maps (1, 10, H, W) -> bigram counts phi (1, 100); parameter-free.

    Parameters
    ----------
    offsets : tuple of (dx, dy) int pairs
        Where "the next digit" is looked for (working-scale px, dx >= 1 to the right, dy down);
        see :func:`bigram_offsets`.
    threshold : float
        Map activation below which nothing counts (removes the detector's faint background).
    unit : float
        Mass of one ideal blob above the threshold (:func:`blob_unit`); phi is divided by it.
    """

    def __init__(self, offsets, threshold: float, unit: float):
        super().__init__()
        if not offsets or min(dx for dx, _ in offsets) < 1:
            raise ValueError(f"offsets must be (dx, dy) pixel pairs with dx >= 1, got {offsets!r}")
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.offsets = tuple((int(dx), int(dy)) for dx, dy in offsets)
        self.threshold = float(threshold)
        self.unit = float(unit)

    def active_pixels(self, maps: torch.Tensor) -> ActivePixels:
        return ActivePixels.from_maps(maps, self.threshold, self.offsets)

    def pairs_model(self, active: ActivePixels) -> BigramPairs:
        """The head restricted to ``active``: input (1, 10, n + 1) values, output (1, 100)."""
        return BigramPairs(active, self.threshold, self.unit)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        active = self.active_pixels(maps)
        return self.pairs_model(active)(active.gather(maps))


class PageModel(nn.Module):
    """The whole explainable chain: prepared page (1, 1, h, w) -> detector -> bigram counts (1, 100)."""

    def __init__(self, detector: nn.Module, head: BigramHead):
        super().__init__()
        self.detector = detector
        self.head = head

    def forward(self, page: torch.Tensor) -> torch.Tensor:
        return self.head(self.detector(page))
