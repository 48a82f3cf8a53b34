"""Typefaces of the synthetic corpus: OFL fonts from the ``fontpkg`` packages, set with
old-style (early-modern) figures through the OpenType feature ``onum`` or, for the ``-lining``
typefaces, with lining figures as tall as capitals (``lnum``), as many later and some early
founts print them.

A typeface is named ``<family>[-italic][-lining]``. The TRAINING and HELD-OUT typefaces are
disjoint, so a detector can be tested on figure shapes it never saw.
"""

from __future__ import annotations

from functools import lru_cache

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
    "cardo-italic",
    "crimson-pro-italic",
    "literata-italic",
    "eb-garamond-lining",
    "literata-lining",
    "cardo-italic-lining",
    "crimson-pro-italic-lining",
)
HELDOUT_TYPEFACES = (
    "source-serif-4",
    "spectral",
    "cormorant-garamond-italic",
    "vollkorn-italic",
    "source-serif-4-lining",
    "vollkorn-italic-lining",
    "spectral-lining",
    "cormorant-garamond-italic-lining",
)
ALL_TYPEFACES = TRAIN_TYPEFACES + HELDOUT_TYPEFACES

OLD_STYLE = ("onum",)
"""OpenType features of a typeface's figures and words: old-style figures..."""
LINING = ("lnum",)
"""...or lining figures (typefaces named ``-lining``)."""


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


class TypefaceFont(ImageFont.FreeTypeFont):
    """A font that knows the OpenType ``features`` its typeface is set with."""

    def __init__(self, path: str, size_px: int, features: tuple[str, ...]):
        super().__init__(path, size_px, layout_engine=ImageFont.Layout.RAQM)
        self.features = list(features)


def _font_file(family: str, style: str):
    """The font file of ``family`` in ``style`` from its ``fontpkg`` package, imported only
    here: the fonts are the optional extra ``synth``, needed by the synthetic generator alone."""
    try:
        import fontpkg

        return fontpkg.path(family, style=style, nearest=True)
    except (ImportError, LookupError) as error:  # fontpkg or the family's package missing
        raise ImportError("the synthetic generator needs the fonts of the optional extra: "
                          "pip install 'sphaera-tables[synth]'") from error


@lru_cache(maxsize=256)
def load_font(typeface: str, size_px: int) -> TypefaceFont:
    """The font of ``typeface`` with an em of ``size_px`` pixels (raqm layout, for the figure
    features)."""
    name = typeface.removesuffix("-lining")
    features = LINING if name != typeface else OLD_STYLE
    style = "italic" if name.endswith("-italic") else "normal"
    path = _font_file(name.removesuffix("-italic"), style)
    return TypefaceFont(str(path), size_px, features)


@lru_cache(maxsize=64)
def digit_height_em(typeface: str) -> float:
    """Mean ink height of the digits 0-9 of ``typeface`` (its own figure style), in ems."""
    font = load_font(typeface, 200)
    heights = [font.getbbox(d, anchor="ls", features=font.features) for d in "0123456789"]
    return sum(box[3] - box[1] for box in heights) / 10 / 200
