"""Pixel-level LRP factors of the page model, computed on crops around the digits.

The detector is a stack of convolutions without stride or pooling, so an output pixel depends
on the input within half its receptive field (``margin`` px, 15 for the default layers), and so
does every neuron its relevance passes through, LRP ratios included. The relevance of a bigram
count ``phi_m`` therefore lies within ``margin`` px of the map pixels ``phi_m`` reads, and a
crop of the page holding those pixels plus ``margin`` gives exactly the relevance of the whole
page (at the page edge the crop ends where the page does, so its zero padding is the page's).

So instead of one backward pass through the whole page per dimension (``pooled_lrp_factors`` on
the :class:`~sphaera_tables.bigram.PageModel`, kept as the reference in the tests and
``bench/bench_pixel_explanation.py``):

1. one forward pass of the detector on the page, and the head's gradient ``d phi_m / d maps`` at
   the active pixels (the relevance each map pixel passes down, LRP being linear in it);
2. per dimension, its seeded pixels grouped into clusters of at most ``tile`` px a side, each
   cut out with ``margin`` px around it (sides rounded up to ``SIZE_STEP`` so that crops batch);
3. one forward and backward pass per batch of crops with the detector's rules, each crop seeded
   with its own part of the gradient; the relevance is pooled onto the page's groups.

Every seeded pixel belongs to one crop, so the crops' relevance adds up to the full page's.

Within a crop, each layer is computed only where its values equal the page's
(:class:`CropDetector`): a convolution without padding on the crop's inner sides loses its
padding there, so the layers narrow from the window to the seeded core (on the bench pages,
0.3 times the multiply-adds of every layer on the whole window). The page forward keeps
fused oneDNN convolutions (:func:`~digit_detector.forward.detector_maps`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from digit_detector.forward import detector_maps
from sphaera_tables.bigram import BigramHead
from sphaera_tables.explain import Composite, PooledFactors
from sphaera_tables.explain.factors import seeded_relevance
from sphaera_tables.explain.pooling import group_centres
from sphaera_tables.progress import Progress, silent

DEFAULT_TILE = 64
"""Largest side of the seeded part of a crop, px (a crop is at most this plus 2 margins)."""
SIZE_STEP = 4
"""Crop sides are rounded up to a multiple of this (px), so that crops of one size batch."""
CLUSTER_CELL = 8
"""Seeded pixels in touching cells of this size (px) share a crop."""
DEFAULT_CROP_BUDGET = 256 << 20
"""Memory for the activations of one batch of crops, bytes."""
BYTES_PER_CHANNEL_PIXEL = 40
"""Activation memory of a rule-wrapped forward and its backward per channel and pixel, bytes
(float32; measured with bench/bench_pixel_explanation.py)."""


@dataclass(frozen=True)
class Crop:
    """One window of the page seeded for one dimension.

    ``row``: index of the dimension among the explained ones; ``top``, ``left``: window origin
    and ``size`` its (height, width) (page px); ``inner``: whether its (top, bottom, left,
    right) side lies inside the page (else on the page edge); ``pixels``: the active pixels
    (indices into the head's active set) it seeds.
    """

    row: int
    top: int
    left: int
    size: tuple[int, int]
    inner: tuple[bool, bool, bool, bool]
    pixels: np.ndarray


class CropDetector(nn.Module):
    """The detector on a batch of crops, each layer computed only where it equals the page's.

    ``unpadded``: a copy of the detector whose convolutions after the first have no padding
    (:func:`unpadded_detector`); here they get zero padding on the crops' sides that lie on the
    page edge (the page's own padding) and none on the inner sides, so every layer shrinks there
    by its padding and the work narrows from the window (input) to the seeded core (output). The
    first convolution keeps its padding (its rule reads the model input itself) and its output
    is cut by ``first_cut`` px on inner sides. ``inner``: as in :class:`Crop`, the same for the
    whole batch. Input (B, 1, h, w) -> maps (B, 10, h', w'), ``margin`` px less than the input
    on every inner side (:func:`core_cut`). Its layers are named as in the page model
    (``detector.layers.0``).
    """

    def __init__(self, unpadded: nn.Module, paddings: list[tuple[int, int]],
                 inner: tuple[bool, bool, bool, bool], first_cut: int):
        super().__init__()
        self.detector = unpadded
        top, bottom, left, right = (not side for side in inner)
        self.edge_pads = [(pw * left, pw * right, ph * top, ph * bottom) for ph, pw in paddings]
        self.first_cut = tuple(first_cut * side for side in inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        convolutions = iter(range(len(self.edge_pads)))
        for module in self.detector.layers:
            if not isinstance(module, nn.Conv2d):
                x = module(x)
            elif (index := next(convolutions)) == 0:
                top, bottom, left, right = self.first_cut
                x = module(x)
                x = x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]
            else:
                pads = self.edge_pads[index]
                x = module(nn.functional.pad(x, pads) if any(pads) else x)
        return x


def unpadded_detector(detector: nn.Module) -> tuple[nn.Module, list[tuple[int, int]]]:
    """A copy of ``detector`` whose convolutions after the first have no padding, and the
    (height, width) paddings of all its convolutions (px)."""
    unpadded = copy.deepcopy(detector)
    convolutions = [m for m in unpadded.layers if isinstance(m, nn.Conv2d)]
    paddings = [tuple(m.padding) for m in convolutions]
    for module in convolutions[1:]:
        module.padding = (0, 0)
    return unpadded, paddings


def core_cut(paddings: list[tuple[int, int]], margin: int) -> int:
    """Px to cut from the first convolution's output on a crop's inner sides, so that a crop's
    maps lie ``margin`` px inside its window there (the later layers shrink by their paddings).
    Its own padding when ``margin`` is half the receptive field; less leaves values that miss
    page context, as a smaller crop would."""
    later = sum(max(padding) for padding in paddings[1:])
    if margin < later:
        raise ValueError(f"margin {margin} px is below the {later} px the detector's layers "
                         "after the first take")
    return margin - later


def cropped_pooled_factors(detector: nn.Module, head: BigramHead, x: torch.Tensor, labels,
                           composite: Composite, *, margin: int | None = None,
                           tile: int = DEFAULT_TILE,
                           memory_budget_bytes: int = DEFAULT_CROP_BUDGET,
                           progress: Progress = silent) -> PooledFactors:
    """Pooled LRP factors of ``PageModel(detector, head)`` on page ``x``, crop by crop.

    Equal, to float rounding, to ``pooled_lrp_factors(PageModel(detector, head), x, labels,
    composite)`` (see the module docstring). ``x``: (1, 1, H, W) prepared page; ``labels``:
    (H, W) group of every pixel; ``composite`` names layers as in the page model
    (``detector.layers.0``); ``margin``: px kept around the seeded pixels (default half the
    detector's receptive field, the least that is exact). ``progress(done, total, message)`` is
    called per batch of crops. Returns values (100, G), phi (100,), centres, zero bias.
    """
    margin = detector.config.receptive_field_px // 2 if margin is None else margin
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    height, width = labels.shape
    if tuple(x.shape) != (1, 1, height, width):
        raise ValueError(f"page of shape {tuple(x.shape)} does not match labels {(height, width)}")
    maps = detector_maps(detector, x)
    active = head.active_pixels(maps)
    phi, dims, seeds = head_seeds(head, active, maps)
    crops = plan_crops(seeds, active, (height, width), margin, tile)
    n_groups = int(labels.max()) + 1
    pooled = torch.zeros((len(phi), n_groups), dtype=x.dtype)
    unpadded, paddings = unpadded_detector(detector)
    first_cut = core_cut(paddings, margin)
    channels = sum(m.out_channels for m in detector.layers if isinstance(m, nn.Conv2d))
    per_pixel = BYTES_PER_CHANNEL_PIXEL * channels * x.element_size() / 4
    batches = _batches(crops, memory_budget_bytes / per_pixel)
    progress(0, len(crops), "pixel relevance")
    done = 0
    for (h, w), inner, batch in batches:
        model = CropDetector(unpadded, paddings, inner, first_cut).eval()
        top, bottom, left, right = (margin * side for side in inner)
        windows = torch.stack([x[0, :, c.top:c.top + h, c.left:c.left + w] for c in batch])
        seed = torch.zeros((len(batch), seeds.shape[1], h - top - bottom, w - left - right),
                           dtype=x.dtype)
        for b, crop in enumerate(batch):
            ys, xs = np.divmod(active.flat[crop.pixels].numpy(), width)
            seed[b][:, ys - crop.top - top, xs - crop.left - left] = \
                seeds[crop.row][:, crop.pixels]
        relevance, _ = seeded_relevance(model, windows, seed, composite)
        window_labels = torch.stack([labels[c.top:c.top + h, c.left:c.left + w] for c in batch])
        rows = torch.as_tensor([int(dims[c.row]) for c in batch])
        index = rows[:, None, None] * n_groups + window_labels
        pooled.view(-1).index_add_(0, index.reshape(-1),
                                   relevance.detach().sum(dim=1).reshape(-1))
        done += len(batch)
        progress(done, len(crops), "pixel relevance")
    return PooledFactors(values=pooled.numpy(), phi=phi.numpy(),
                         centres=group_centres(labels.numpy()),
                         bias=np.zeros(len(phi), dtype=pooled.numpy().dtype))


def head_seeds(head: BigramHead, active, maps: torch.Tensor):
    """The head's gradient at the active pixels: what LRP passes down to the detector's maps.

    Returns ``(phi, dims, seeds)``: phi (100,), the dimensions with ``phi_m != 0`` (k,), and
    seeds (k, 10, n) with ``seeds[r, c, i] = d phi_dims[r] / d maps[c, active pixel i]`` (the
    head is parameter-free and positively homogeneous: its LRP is gradient x input).
    """
    phi, gradients = head.pairs_model(active).map_gradients(active.gather(maps))
    dims = torch.nonzero(phi).flatten()
    return phi, dims, gradients[dims, :, :active.count]


def plan_crops(seeds: torch.Tensor, active, shape, margin: int, tile: int) -> list[Crop]:
    """Crops covering every seeded pixel once: per dimension, clusters of nearby seeded pixels
    (touching ``CLUSTER_CELL`` cells), split into ``tile`` x ``tile`` cores; or one crop around
    all of them where that is no larger (a dimension seeded all over a small dense page)."""
    height, width = shape
    ys, xs = np.divmod(active.flat.numpy(), width)
    crops = []
    for row in range(len(seeds)):
        pixels = np.flatnonzero((seeds[row] != 0).any(dim=0).numpy())
        if len(pixels) == 0:
            continue
        ours = [Crop(row, *_window(ys[pixels[group]], xs[pixels[group]], shape, margin),
                     pixels[group]) for group in _clusters(ys[pixels], xs[pixels], tile)]
        whole = Crop(row, *_window(ys[pixels], xs[pixels], shape, margin), pixels)
        if np.prod(whole.size) <= sum(np.prod(crop.size) for crop in ours):
            ours = [whole]
        crops.extend(ours)
    return crops


def _clusters(ys: np.ndarray, xs: np.ndarray, tile: int) -> list[np.ndarray]:
    """Index groups of the points ``(ys, xs)``: connected coarse cells, cut into tiles."""
    if len(ys) == 0:
        return []
    cells = np.zeros((ys.max() // CLUSTER_CELL + 1, xs.max() // CLUSTER_CELL + 1), dtype=bool)
    cells[ys // CLUSTER_CELL, xs // CLUSTER_CELL] = True
    components, _ = ndimage.label(cells, structure=np.ones((3, 3)))
    component = components[ys // CLUSTER_CELL, xs // CLUSTER_CELL]
    groups = []
    for label in np.unique(component):
        members = np.flatnonzero(component == label)
        tiles = ((ys[members] - ys[members].min()) // tile) * (1 << 20) + \
            (xs[members] - xs[members].min()) // tile
        groups.extend(members[tiles == t] for t in np.unique(tiles))
    return groups


def _window(ys: np.ndarray, xs: np.ndarray, shape, margin: int):
    """``(top, left, (height, width), inner)`` of the crop around the points: ``margin`` px on
    every side, or up to the page edge, its sides rounded up to ``SIZE_STEP`` (within the
    page); ``inner`` as in :class:`Crop`."""
    origin, size, inner = [], [], []
    for coords, side in ((ys, shape[0]), (xs, shape[1])):
        span = int(coords.max() - coords.min()) + 1
        length = min(side, -(-(span + 2 * margin) // SIZE_STEP) * SIZE_STEP)
        start = min(max(int(coords.min()) - margin, 0), side - length)
        origin.append(start)
        size.append(length)
        inner += [start > 0, start + length < side]
    return origin[0], origin[1], (size[0], size[1]), tuple(inner)


def _batches(crops: list[Crop], pixels_per_batch: float):
    """``((h, w), inner, crops)`` batches of crops of one size and the same inner sides, each
    within ``pixels_per_batch``."""
    alike: dict[tuple, list[Crop]] = {}
    for crop in crops:
        alike.setdefault((crop.size, crop.inner), []).append(crop)
    for (size, inner), same in sorted(alike.items()):
        per_batch = max(1, int(pixels_per_batch // (size[0] * size[1])))
        for start in range(0, len(same), per_batch):
            yield size, inner, same[start:start + per_batch]
