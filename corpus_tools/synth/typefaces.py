"""Typefaces of the synthetic corpus: OFL fonts from the ``fontpkg`` packages set with old-style
(early-modern) figures through the OpenType feature ``onum``.

A typeface is named ``<family>`` or ``<family>-italic``. The TRAINING and HELD-OUT typefaces are
disjoint, so a detector can be tested on figure shapes it never saw.
"""

from __future__ import annotations

from functools import lru_cache

import fontpkg
from PIL import ImageFont

TRAIN_TYPEFACES = (
    "eb-garamond",
    "eb-garamond-italic",
    "cardo",
    "cormorant-garamond",
    "vollkorn",
    "crimson-pro",
    "literata",
    "spectral-italic",
)
HELDOUT_TYPEFACES = (
    "source-serif-4",
    "spectral",
    "cormorant-garamond-italic",
    "vollkorn-italic",
)
ALL_TYPEFACES = TRAIN_TYPEFACES + HELDOUT_TYPEFACES

#: OpenType features used for every figure and word: old-style figures.
FEATURES = ("onum",)


def resolve_typefaces(selection: str | None) -> tuple[str, ...]:
    """Typeface names for ``selection``: ``train``, ``heldout``, ``all`` (or None) or ``NAME,NAME``.

    Raises ``ValueError`` naming the unknown typeface and the known ones.
    """
    if selection is None or selection == "all":
        return ALL_TYPEFACES
    if selection == "train":
        return TRAIN_TYPEFACES
    if selection == "heldout":
        return HELDOUT_TYPEFACES
    names = tuple(name.strip() for name in selection.split(",") if name.strip())
    unknown = [name for name in names if name not in ALL_TYPEFACES]
    if unknown or not names:
        raise ValueError(f"unknown typeface {', '.join(unknown) or repr(selection)}; "
                         f"known: train, heldout, all, {', '.join(ALL_TYPEFACES)}")
    return names


@lru_cache(maxsize=256)
def load_font(typeface: str, size_px: int) -> ImageFont.FreeTypeFont:
    """The font of ``typeface`` with an em of ``size_px`` pixels (raqm layout, for ``onum``)."""
    style = "italic" if typeface.endswith("-italic") else "normal"
    path = fontpkg.path(typeface.removesuffix("-italic"), style=style, nearest=True)
    return ImageFont.truetype(str(path), size_px, layout_engine=ImageFont.Layout.RAQM)


@lru_cache(maxsize=64)
def digit_height_em(typeface: str) -> float:
    """Mean ink height of the old-style digits 0-9 of ``typeface``, in ems."""
    font = load_font(typeface, 200)
    heights = [font.getbbox(d, anchor="ls", features=list(FEATURES)) for d in "0123456789"]
    return sum(box[3] - box[1] for box in heights) / 10 / 200
