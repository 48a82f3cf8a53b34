"""The picture of a candidate match, drawn so that a historian can check it by eye.

Both pages are drawn upright (a table printed sideways is turned the way the detector read it),
side by side, under a title that names them and gives the score. Red curves join the numbers of
page A to the numbers of page B that support the score (the strongest links; darker = more of
the score). The strongest aligned rows are outlined in one colour each on both pages and joined
by a straight line of that colour, labelled with the row's first number, so a row can be
followed across. Cells the two pages print differently (the collation's variants) are boxed in
orange. A legend under the pages says all this.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digit_detector.prepare import turn_coords
from sphaera_tables.explain import PairExplanation, render_box_links
from sphaera_tables.explain.render import POSITIVE_COLOUR, side_by_side
from sphaera_tables.page_analysis import PageAnalysis

DRAWN_LINKS = 150
"""Number links drawn (the strongest); the JSON keeps its own count."""
DRAWN_ROWS = 12
"""Aligned rows drawn (the strongest by relevance)."""
ROW_COLOURS = [(0, 114, 178), (0, 158, 115), (204, 121, 167), (86, 180, 233), (120, 94, 240),
               (0, 90, 60), (170, 110, 0), (60, 60, 60)]
"""Colour-blind-safe colours cycled over the drawn rows (red is kept for number links)."""
VARIANT_COLOUR = (230, 159, 0)
TEXT_COLOUR = (20, 20, 20)
GAP = 20
"""Blank pixels between the two pages."""


def render_match(image_a: np.ndarray, image_b: np.ndarray, explanation: PairExplanation,
                 analysis_a: PageAnalysis, analysis_b: PageAnalysis, record: dict,
                 drawn: int = DRAWN_LINKS) -> np.ndarray:
    """RGB uint8 picture of a match (see the module docstring): :func:`draw_match` under a
    title (page names, score) and over a legend.

    ``image_a``, ``image_b``: the two pages at any size (e.g. thumbnails), as loaded, not
    turned; ``record``: the match's :func:`~sphaera_tables.number_links.explanation_record`
    (names, score, row links and variants, boxes in full-resolution page px).
    """
    pages, offset_b = draw_match(image_a, image_b, explanation, analysis_a, analysis_b, record,
                                 drawn)
    return _framed(pages, record, offset_b, drawn)


def draw_match(image_a: np.ndarray, image_b: np.ndarray, explanation: PairExplanation,
               analysis_a: PageAnalysis, analysis_b: PageAnalysis, record: dict,
               drawn: int = DRAWN_LINKS) -> tuple[np.ndarray, int]:
    """The two pages upright side by side with the number links, the strongest rows and the
    variants drawn (arguments as :func:`render_match`). Returns the RGB picture and the x at
    which page B starts."""
    page_a, page_b = _Upright(image_a, analysis_a), _Upright(image_b, analysis_b)
    boxes_a, boxes_b = page_a.number_boxes(), page_b.number_boxes()
    relevance = strongest_only(explanation.relevance[: len(boxes_a), : len(boxes_b)], drawn)
    pages = render_box_links(page_a.image, page_b.image, boxes_a, boxes_b, relevance, gap=GAP)
    _, _, top_a, top_b, offset_b = side_by_side(page_a.image.shape, page_b.image.shape, GAP)
    place_a, place_b = (0, top_a), (offset_b, top_b)
    labels = []
    for number, row in enumerate(_drawn_rows(record)):
        colour = ROW_COLOURS[number % len(ROW_COLOURS)]
        box_a = _shifted(page_a.box(row["box_a"]), place_a)
        box_b = _shifted(page_b.box(row["box_b"]), place_b)
        _outline(pages, box_a, colour, 2)
        _outline(pages, box_b, colour, 2)
        start = (box_a[0] + box_a[2], box_a[1] + box_a[3] / 2)
        end = (box_b[0], box_b[1] + box_b[3] / 2)
        cv2.line(pages, _point(start), _point(end), colour, 1, cv2.LINE_AA)
        labels.append((str(row["label_a"]), colour, box_a))
    for variant in record["variants"]:
        _outline(pages, _shifted(page_a.box(variant["box_a"]), place_a), VARIANT_COLOUR, 2)
        _outline(pages, _shifted(page_b.box(variant["box_b"]), place_b), VARIANT_COLOUR, 2)
    return _labelled(pages, labels), offset_b


def strongest_only(relevance: np.ndarray, count: int = DRAWN_LINKS) -> np.ndarray:
    """``relevance`` with all but its ``count`` largest-magnitude entries set to zero (what a
    picture draws, so that it stays readable)."""
    if relevance.size <= count:
        return relevance
    kept = np.zeros_like(relevance)
    flat = np.argpartition(-np.abs(relevance), count - 1, axis=None)[:count]
    kept.flat[flat] = relevance.flat[flat]
    return kept


class _Upright:
    """A page image turned upright as the detector read it, and page px boxes mapped onto it."""

    def __init__(self, image: np.ndarray, analysis: PageAnalysis):
        self.analysis = analysis
        self.source_shape = image.shape[:2]
        self.image = np.ascontiguousarray(np.rot90(image, k=analysis.rotation // 90))

    def box(self, page_box) -> np.ndarray:
        """[x0, y0, x1, y1] in full-resolution page px -> (x, y, w, h) in the upright image."""
        return self.boxes(np.asarray(page_box, dtype=np.float64).reshape(1, 4))[0]

    def boxes(self, page_boxes: np.ndarray) -> np.ndarray:
        """(G, 4) boxes [x0, y0, x1, y1] in page px -> (G, 4) (x, y, w, h), all at once."""
        factor_y = self.source_shape[0] / self.analysis.page_shape[0]
        factor_x = self.source_shape[1] / self.analysis.page_shape[1]
        xs, ys = turn_coords(self.source_shape, self.analysis.rotation,
                             page_boxes[:, [0, 2]] * factor_x, page_boxes[:, [1, 3]] * factor_y)
        left, top = xs.min(axis=1), ys.min(axis=1)
        return np.column_stack([left, top, xs.max(axis=1) - left, ys.max(axis=1) - top])

    def number_boxes(self) -> np.ndarray:
        """(x, y, w, h) of every printed number of the page, shape (G, 4)."""
        return self.boxes(self.analysis.numbers[["x0", "y0", "x1", "y1"]].to_numpy(np.float64))


def _shifted(box: np.ndarray, place) -> np.ndarray:
    return box + np.array([place[0], place[1], 0, 0])


def _point(xy) -> tuple[int, int]:
    return round(float(xy[0])), round(float(xy[1]))


def _outline(canvas: np.ndarray, box: np.ndarray, colour, width: int) -> None:
    x, y, w, h = box
    cv2.rectangle(canvas, _point((x - 2, y - 2)), _point((x + w + 2, y + h + 2)), colour, width)


def _drawn_rows(record: dict) -> list[dict]:
    """The aligned rows a picture draws: the ``DRAWN_ROWS`` strongest."""
    return sorted(record["rows"], key=lambda row: -row["relevance"])[:DRAWN_ROWS]


def _font_size(height: int) -> int:
    return max(11, round(height / 55))


def _labelled(pages: np.ndarray, labels) -> np.ndarray:
    """``pages`` with each drawn row's label (its first number) left of its box in A."""
    picture = Image.fromarray(pages)
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=max(10, round(_font_size(pages.shape[0]) * 0.8)))
    for text, colour, box in labels:
        draw.text((box[0] - 3, box[1] + box[3] / 2), text, colour, font, anchor="rm")
    return np.asarray(picture)


def _framed(pages: np.ndarray, record: dict, offset_b: int, drawn_links: int) -> np.ndarray:
    """The pages with a title above (page names, score) and a legend below."""
    font_size = _font_size(pages.shape[0])
    font = ImageFont.load_default(size=font_size)
    small = ImageFont.load_default(size=max(10, round(font_size * 0.8)))
    line = round(font_size * 1.5)
    title_height, legend_height = 2 * line + 6, 3 * line + 8
    height, width = pages.shape[0] + title_height + legend_height, max(pages.shape[1], 40 * font_size)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(Image.fromarray(pages), (0, title_height))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 3), _fitted(f"A: {record['page_a']}", font, offset_b - 8), TEXT_COLOUR, font)
    draw.text((offset_b, 3), _fitted(f"B: {record['page_b']}", font, width - offset_b - 4),
              TEXT_COLOUR, font)
    summary = (f"score {record['score']:.3f} ({record['model']} model, similarity "
               f"{record['similarity']:.3f})  ·  {len(record['rows'])} rows aligned: "
               f"{record['cells_agree']} cells alike, {record['cells_differ']} printed "
               f"differently  ·  relevance adds up to the similarity (residual "
               f"{record['residual']:.0e})")
    draw.text((4, 3 + line), _fitted(summary, font, width - 8), TEXT_COLOUR, font)
    _legend(draw, pages.shape[0] + title_height + 4, line, small, drawn_links,
            len(_drawn_rows(record)))
    return np.asarray(canvas)


def _legend(draw: ImageDraw.ImageDraw, top: int, line: int, font, drawn_links: int,
            drawn_rows: int) -> None:
    """Three lines: number links, aligned rows, variants, each with its mark."""
    red = tuple(int(c) for c in POSITIVE_COLOUR)
    entries = [
        (red, "line", f"a number of A and a number of B that support the score together "
                      f"(the {drawn_links} strongest; darker = more of the score)"),
        (ROW_COLOURS[0], "row", f"aligned rows, one colour per row, labelled with the row's "
                                f"first number (the {drawn_rows} strongest)"),
        (VARIANT_COLOUR, "box", "a cell the two pages print differently (a variant)"),
    ]
    for index, (colour, mark, text) in enumerate(entries):
        y = top + index * line + line // 2
        if mark == "line":
            draw.line([(6, y), (40, y)], fill=colour, width=2)
        else:
            draw.rectangle([(8, y - line // 3), (38, y + line // 3)], outline=colour, width=2)
        draw.text((48, y), text, TEXT_COLOUR, font, anchor="lm")


def _fitted(text: str, font, width: float) -> str:
    """``text`` shortened in the middle (with an ellipsis) to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 4 and font.getlength(text[: keep // 2] + "…" + text[-(keep // 2):]) > width:
        keep -= 2
    return text[: keep // 2] + "…" + text[-(keep // 2):]
