"""The labelled digit patches the detector is trained from by default.

The shipped set (``annotations/data/patches/``, see :func:`default_patch_set`) holds 64 x 64 px
grey patches cut from synthetic pages set in the TRAINING typefaces only (the held-out ones stay
unseen): 30 patches centred on each digit 0-9, every digit whose centre lies in a patch labelled (such digits
are never cut by the patch edge), and 150 negatives with no digit (prose, diagrams, table headers and rulings). Regenerate it with::

    tables make-patches annotations/data/patches --seed 0

or ``make_patches(out_dir, seed=0)`` from Python.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from annotations.writers import write_patch_set

PATCH_SIZE = 64
DATA_DIR = Path(__file__).parent / "data" / "patches"


def default_patch_set() -> Path:
    """The patch-set folder shipped inside the package."""
    return DATA_DIR


def _crop_boxes(page: pd.DataFrame, left: int, top: int, size: int) -> pd.DataFrame | None:
    """Digit boxes of ``page`` whose centre lies in the crop, in crop coordinates.

    None when such a digit is cut by the crop edge (digits with their centre outside, whose
    blob target would fall outside too, may show at the edge unlabelled).
    """
    cx, cy = (page["x0"] + page["x1"]) / 2, (page["y0"] + page["y1"]) / 2
    centred = page[(cx >= left) & (cx < left + size) & (cy >= top) & (cy < top + size)]
    whole = (centred["x0"] >= left) & (centred["x1"] <= left + size) & \
        (centred["y0"] >= top) & (centred["y1"] <= top + size)
    if not whole.all():
        return None
    boxes = centred[["x0", "y0", "x1", "y1", "digit"]].copy()
    boxes[["x0", "x1"]] -= left
    boxes[["y0", "y1"]] -= top
    return boxes


@lru_cache(maxsize=8)
def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def make_patches(out_dir, seed: int = 0, per_digit: int = 30, negatives: int = 150,
                 typefaces=None, pages_per_typeface: int = 8) -> Path:
    """Generate a balanced patch set from synthetic pages and write it to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the PNG patches and ``patches.csv``.
    seed : int
        Random seed (same seed, same patches).
    per_digit : int
        Patches centred on each digit 0-9.
    negatives : int
        Patches with no digit at all.
    typefaces : sequence of str, optional
        Typefaces to render (default: the TRAINING typefaces).
    pages_per_typeface : int
        Synthetic pages generated per typeface to cut from.

    Returns
    -------
    Path
        The ``patches.csv`` written.

    Raises
    ------
    ValueError
        When the pages hold too few patches of some digit.
    """
    from corpus_tools.synth import TRAIN_TYPEFACES, generate_corpus

    rng = np.random.default_rng(seed)
    typefaces = tuple(typefaces or TRAIN_TYPEFACES)
    images, boxes, extra = {}, [], []
    with tempfile.TemporaryDirectory() as tmp:
        digits, pages = [], []
        for k, typeface in enumerate(typefaces):
            corpus = generate_corpus(Path(tmp) / str(k), pages=pages_per_typeface,
                                     seed=seed * 1000 + k, typefaces=typeface)
            page_table = pd.read_csv(corpus / "truth" / "pages.csv")
            page_table = page_table[page_table["rotation"] == 0]
            page_table["path"] = [corpus / name for name in page_table["page_id"]]
            pages.append(page_table)
            table = pd.read_csv(corpus / "truth" / "digits.csv")
            table["path"] = [corpus / name for name in table["page_id"]]
            digits.append(table[table["page_id"].isin(page_table["page_id"])])
        digits = pd.concat(digits, ignore_index=True)
        pages = pd.concat(pages, ignore_index=True)
        by_page = dict(tuple(digits.groupby("path")))
        for digit in range(10):
            # Try five times as many random candidates as needed (and 50 more), page by page
            # (one decode per page), and keep the first successes in the random order.
            order = rng.permutation(digits.index[digits["digit"] == digit].to_numpy())
            order = order[: 5 * per_digit + 50]
            found = {}
            for index in sorted(order):
                target = digits.loc[index]
                pixels = _grey(target["path"])
                cx = (target["x0"] + target["x1"]) // 2 + int(rng.integers(-6, 7))
                cy = (target["y0"] + target["y1"]) // 2 + int(rng.integers(-6, 7))
                left = int(np.clip(cx - PATCH_SIZE // 2, 0, pixels.shape[1] - PATCH_SIZE))
                top = int(np.clip(cy - PATCH_SIZE // 2, 0, pixels.shape[0] - PATCH_SIZE))
                inside = _crop_boxes(by_page[target["path"]], left, top, PATCH_SIZE)
                if inside is not None:
                    found[index] = (pixels[top: top + PATCH_SIZE, left: left + PATCH_SIZE],
                                    inside, target)
            chosen = [index for index in order if index in found][:per_digit]
            if len(chosen) < per_digit:
                raise ValueError(f"only {len(chosen)} patches of digit {digit} found, "
                                 f"{per_digit} wanted: generate more pages per typeface")
            for made, index in enumerate(chosen):
                crop, inside, target = found[index]
                name = f"d{digit}_{made:03d}.png"
                images[name] = crop
                boxes.append(inside.assign(file=name))
                extra.append((name, target["typeface"], target["page_id"]))
        made = 0
        while made < negatives:
            page = pages.iloc[int(rng.integers(len(pages)))]
            pixels = _grey(page["path"])
            left = int(rng.integers(0, pixels.shape[1] - PATCH_SIZE))
            top = int(rng.integers(0, pixels.shape[0] - PATCH_SIZE))
            crop = pixels[top: top + PATCH_SIZE, left: left + PATCH_SIZE]
            on_page = by_page.get(page["path"])
            touching = on_page is not None and (
                (on_page["x1"] > left) & (on_page["x0"] < left + PATCH_SIZE)
                & (on_page["y1"] > top) & (on_page["y0"] < top + PATCH_SIZE)).any()
            if touching or crop.std() < 12:
                continue
            name = f"neg_{made:03d}.png"
            images[name] = crop
            extra.append((name, page["typeface"], page["page_id"]))
            made += 1
    frame = pd.concat(boxes, ignore_index=True)[["file", "x0", "y0", "x1", "y1", "digit"]]
    provenance = pd.DataFrame(extra, columns=["file", "typeface", "page_id"]).set_index("file")
    return write_patch_set(out_dir, images, frame, provenance)
