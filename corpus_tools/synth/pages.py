"""Typesetting of the four page kinds on a clean upright :class:`Canvas`: table, prose, diagram
and title pages. Sizes are in pixels at the page's dpi; type sizes are given in points."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from corpus_tools.synth.astronomy import TableContent
from corpus_tools.synth.canvas import Canvas, Figures, advance, glyph_ink_box
from corpus_tools.synth.typefaces import load_font
from corpus_tools.synth.vocabulary import (
    GROUPS,
    PROSE_WORDS,
    ROW_LABELS,
    TITLES,
    UNITS,
)

RULINGS = ("none", "columns", "frame", "grid")


@dataclass(frozen=True)
class BookStyle:
    """How one book sets its pages: typeface, type size (pt), figure 1 as a small capital I
    or not, uneven baseline (``baseline_jitter`` in ems), header language, rulings, spacing
    (``column_gap`` and ``line_spacing`` in ems), page size (inches) and margin (fraction)."""

    typeface: str
    size_pt: float
    roman_one: bool
    baseline_jitter: float
    language: str
    rulings: str
    column_gap: float
    line_spacing: float
    page_inches: tuple[float, float]
    margin: float


@dataclass(frozen=True)
class TablePrint:
    """One printed table instance: which content rows, in which group order, with which strings.

    ``printed`` maps (row, column) of the content to the printed digit string where it differs
    from the true value (a misprint). ``group_order`` permutes the value column groups.
    """

    instance_id: str
    content_id: str
    content: TableContent
    rows: tuple[int, ...]
    group_order: tuple[int, ...]
    printed: dict = field(default_factory=dict)

    def text(self, row: int, column: int) -> str:
        """The digits printed for content cell (row, column)."""
        return self.printed.get((row, column), str(self.content.rows[row][column]))


def column_groups(content: TableContent) -> list[list[int]]:
    """Value columns (all but the argument column 0) grouped by their header, in content order."""
    groups: list[list[int]] = []
    for index, column in enumerate(content.columns[1:], start=1):
        if groups and content.columns[groups[-1][0]].group == column.group:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def book_figures(style: BookStyle, size_px: float) -> Figures:
    """The figures of a book at an em of ``size_px`` pixels."""
    font = load_font(style.typeface, max(6, round(size_px)))
    replacements = ()
    if style.roman_one:
        zero, capital = glyph_ink_box(font, "0"), glyph_ink_box(font, "I")
        scale = (zero[3] - zero[1]) / max(1, capital[3] - capital[1])
        replacements = (("1", load_font(style.typeface, max(6, round(size_px * scale))), "I"),)
    return Figures(font, replacements, style.baseline_jitter * font.size)


def _page_number(canvas: Canvas, style: BookStyle, figures: Figures, number: int | None,
                 right: bool) -> None:
    if number is None:
        return
    text = str(number)
    margin = style.margin * canvas.width
    x = canvas.width - margin - figures.width(text) if right else margin
    canvas.number(x, style.margin * canvas.height - 1.2 * figures.font.size, text, figures)


def _group_label(content: TableContent, columns: list[int], language: str) -> str:
    group = content.columns[columns[0]].group
    return GROUPS[language].get(group, group)


def _column_widths(table: TablePrint, groups, figures: Figures, small, gap: float,
                   language: str) -> list[float]:
    """Width (px) of each printed column (argument first, then the groups in print order): the
    widest number plus ``gap``, widened evenly so each group header fits over its columns."""
    columns = [0] + [column for group in groups for column in group]
    widths = [max(figures.width(table.text(r, c)) for r in table.rows) + gap for c in columns]
    first = 1
    for group in groups:
        need = small.getlength(_group_label(table.content, group, language)) + gap
        have = sum(widths[first: first + len(group)])
        for k in range(first, first + len(group)):
            widths[k] += max(0.0, need - have) / len(group)
        first += len(group)
    return widths


def _rulings(canvas: Canvas, kind: str, lines_x, groups, frame, body_top: float,
             rule: int) -> None:
    """Rules of a table: ``kind`` ``columns`` (between column groups), ``grid`` (between all
    columns, and frame) or ``frame`` (column groups and frame). ``lines_x``: left edge of each
    column; ``frame``: (left, top, right, bottom) of the table below its title."""
    if kind == "none":
        return
    left, top, right, bottom = frame
    for k in range(1, len(lines_x)):
        if kind == "grid" or k == 1 or groups[k] != groups[k - 1]:
            canvas.line(lines_x[k], top, lines_x[k], bottom, rule)
    if kind in ("frame", "grid"):
        for y in (top, body_top, bottom):
            canvas.line(left, y, right, y, rule)
        canvas.line(left, top, left, bottom, rule)
        canvas.line(right, top, right, bottom, rule)


def typeset_table(canvas: Canvas, style: BookStyle, table: TablePrint, dpi: float, rng,
                  page_number: int | None = None) -> None:
    """Set ``table`` at a random position inside the margins, shrinking the type to fit."""
    content, language = table.content, style.language
    groups = [column_groups(content)[k] for k in table.group_order]
    columns = [0] + [c for group in groups for c in group]
    labels = [ROW_LABELS[language].get(content.row_labels[r], "") for r in table.rows] \
        if content.row_labels else []
    margin_x, margin_y = style.margin * canvas.width, style.margin * canvas.height
    size_px = style.size_pt * dpi / 72
    for _ in range(12):
        figures = book_figures(style, size_px)
        font = figures.font
        small = load_font(style.typeface, max(6, round(0.8 * size_px)))
        em, gap = font.size, style.column_gap * font.size
        widths = _column_widths(table, groups, figures, small, gap, language)
        label_width = max((font.getlength(t) for t in labels), default=-gap) + gap
        table_width = sum(widths) + label_width
        line = style.line_spacing * em
        table_height = (len(table.rows) + 3.2) * line + 1.6 * em
        if table_width <= canvas.width - 2 * margin_x and \
                table_height <= canvas.height - 2 * margin_y:
            break
        size_px *= 0.9
    left = margin_x + rng.uniform(0, max(0.0, canvas.width - 2 * margin_x - table_width))
    top = margin_y + rng.uniform(0, max(0.0, canvas.height - 2 * margin_y - table_height))
    _page_number(canvas, style, figures, page_number, bool(rng.integers(2)))

    title = load_font(style.typeface, max(6, round(1.25 * em)))
    title_text = TITLES[content.table_type][language]
    baseline = top + 1.3 * em
    canvas.words(left + (table_width - title.getlength(title_text)) / 2, baseline, title_text,
                 title)
    # column x positions: argument, labels, then value columns
    starts = [left]
    for k, width in enumerate(widths[:-1]):
        starts.append(starts[-1] + width + (label_width if k == 0 else 0))
    header_top = baseline + 0.5 * em
    baseline = header_top + line
    position = 1
    for group in groups:
        group_left = starts[position]
        group_width = sum(widths[position: position + len(group)])
        text = _group_label(content, group, language)
        canvas.words(group_left + (group_width - small.getlength(text)) / 2, baseline, text,
                     small)
        for j, column in enumerate(group):
            unit = UNITS[language].get(content.columns[column].unit, "")
            canvas.words(starts[position + j] + (widths[position + j] - small.getlength(unit))
                         / 2, baseline + line, unit, small)
        position += len(group)
    body_top = baseline + line + 0.45 * line
    rule = max(1, round(dpi / 150))
    for k, row in enumerate(table.rows):
        row_baseline = body_top + (k + 1) * line - 0.25 * line
        if labels:
            canvas.words(left + widths[0], row_baseline, labels[k], font)
        for position, column in enumerate(columns):
            text = table.text(row, column)
            x = starts[position] + widths[position] - gap / 2 - figures.width(text)
            canvas.number(x, row_baseline, text, figures, rng, table.instance_id,
                          f"{table.content_id}:{row}:{column}")
    bottom = body_top + len(table.rows) * line
    groups_of = [content.columns[column].group for column in columns]
    _rulings(canvas, style.rulings, [x - 0.1 * gap for x in starts], groups_of,
             (left - 0.2 * gap, header_top, left + table_width, bottom), body_top, rule)
    if rng.random() < 0.5:  # running text above and below the table
        text_line = 1.25 * em
        _prose_lines(canvas, font, margin_x, canvas.width - margin_x, margin_y,
                     top - text_line, text_line, rng)
        _prose_lines(canvas, font, margin_x, canvas.width - margin_x, bottom + 0.5 * text_line,
                     canvas.height - margin_y, text_line, rng)


def _prose_lines(canvas: Canvas, font, left: float, right: float, top: float, bottom: float,
                 line: float, rng) -> None:
    """Lines of random words between ``top`` and ``bottom`` (one draw call per line)."""
    baseline = top + line
    space = advance(font, " ")
    while baseline < bottom:
        words, x = [], left
        while True:
            word = PROSE_WORDS[rng.integers(len(PROSE_WORDS))]
            width = advance(font, word) + space
            if x + width > right:
                break
            words.append(word)
            x += width
        canvas.words(left, baseline, " ".join(words), font)
        baseline += line


def typeset_prose(canvas: Canvas, style: BookStyle, dpi: float, rng,
                  page_number: int | None = None) -> None:
    """A page of running Latin text (words only; the page number, if any, is in figures)."""
    figures = book_figures(style, style.size_pt * dpi / 72 * 1.1)
    font = figures.font
    margin_x, margin_y = style.margin * canvas.width, style.margin * canvas.height
    _page_number(canvas, style, figures, page_number, bool(rng.integers(2)))
    _prose_lines(canvas, font, margin_x, canvas.width - margin_x, margin_y,
                 canvas.height - margin_y, 1.25 * font.size, rng)


def typeset_diagram(canvas: Canvas, style: BookStyle, dpi: float, rng) -> None:
    """A cosmological diagram (nested spheres, axis, ecliptic, labels) above some text."""
    font = load_font(style.typeface, round(style.size_pt * dpi / 72))
    margin_x, margin_y = style.margin * canvas.width, style.margin * canvas.height
    radius = (canvas.width - 2 * margin_x) * rng.uniform(0.3, 0.45)
    cx = canvas.width / 2
    cy = margin_y + radius + font.size
    rule = max(1, round(dpi / 150))
    for k in range(int(rng.integers(2, 6))):
        r = radius * (1 - 0.18 * k)
        canvas.ellipse((cx - r, cy - r, cx + r, cy + r), rule)
    tilt = math.radians(rng.uniform(15, 35))
    dx, dy = radius * math.cos(tilt), radius * math.sin(tilt)
    canvas.line(cx - dx, cy + dy, cx + dx, cy - dy, rule)
    canvas.line(cx - radius, cy, cx + radius, cy, rule)
    canvas.line(cx, cy - radius, cx, cy + radius, rule)
    canvas.ellipse((cx - radius, cy - 0.25 * radius, cx + radius, cy + 0.25 * radius), rule)
    for _ in range(int(rng.integers(3, 8))):
        word = PROSE_WORDS[rng.integers(len(PROSE_WORDS))]
        angle = rng.uniform(0, 2 * math.pi)
        r = radius * rng.uniform(0.3, 0.9)
        canvas.words(cx + r * math.cos(angle), cy + r * math.sin(angle), word, font)
    _prose_lines(canvas, font, margin_x, canvas.width - margin_x, cy + radius + font.size,
                 canvas.height - margin_y, 1.25 * font.size, rng)


def typeset_title(canvas: Canvas, style: BookStyle, dpi: float, rng, title: str, author: str,
                  imprint: str, year: int | None) -> None:
    """A title page in a woodcut frame: title, author, imprint and the year in figures."""
    em = style.size_pt * dpi / 72
    margin_x, margin_y = style.margin * canvas.width, style.margin * canvas.height
    rule = max(1, round(dpi / 150))
    for inset in (0, 0.4 * em):
        canvas.line(margin_x + inset, margin_y + inset, canvas.width - margin_x - inset,
                    margin_y + inset, 3 * rule)
        canvas.line(margin_x + inset, canvas.height - margin_y - inset,
                    canvas.width - margin_x - inset, canvas.height - margin_y - inset, 3 * rule)
        canvas.line(margin_x + inset, margin_y + inset, margin_x + inset,
                    canvas.height - margin_y - inset, 3 * rule)
        canvas.line(canvas.width - margin_x - inset, margin_y + inset,
                    canvas.width - margin_x - inset, canvas.height - margin_y - inset, 3 * rule)
    inner = canvas.width - 2 * margin_x - 2 * em
    baseline = margin_y + 3 * em
    for text, scale in ((title, 1.8), (author, 1.2), (imprint, 1.0)):
        font = load_font(style.typeface, max(6, round(scale * em)))
        words, lines = text.split(), []
        for word in words:
            if lines and font.getlength(lines[-1] + " " + word) <= inner:
                lines[-1] += " " + word
            else:
                lines.append(word)
        for text_line in lines[:6]:
            if baseline > canvas.height - margin_y - 4 * em:
                break
            clean = "".join(ch for ch in text_line if not ch.isdigit())
            canvas.words((canvas.width - font.getlength(clean)) / 2, baseline, clean, font)
            baseline += 1.3 * font.size
        baseline += rng.uniform(1, 3) * em
    if year is not None:
        figures = book_figures(style, 1.2 * em)
        text = str(year)
        canvas.number((canvas.width - figures.width(text)) / 2,
                      canvas.height - margin_y - 2 * em, text, figures)
