"""Reading detected digits as a table: numbers, rows and column neighbours, upright."""

import numpy as np
import pandas as pd

from digit_detector.reading import NEIGHBOUR_RISE
from sphaera_tables.numbers import (
    CELL_GAP,
    COLUMN_REACH,
    COLUMN_SLACK,
    ReadingFrame,
    column_neighbours,
    group_numbers,
    number_table,
    row_neighbours,
    row_summary,
)

UPRIGHT = ReadingFrame((200, 300), 1.0, 0, pitch=8.0, height=12.0)


def digits_at(rows, score=0.9):
    """Digit boxes 8 px wide, 12 px high, centred at (x, y)."""
    frame = pd.DataFrame(rows, columns=["x", "y", "digit"]).astype({"x": float, "y": float})
    return frame.assign(score=score, x0=frame.x - 4, x1=frame.x + 4, y0=frame.y - 6,
                        y1=frame.y + 6)


def test_digits_on_a_line_at_digit_pitch_form_numbers_in_reading_order():
    # row 1: "23" "45"   row 2: "7" "108" (with a slightly uneven baseline)
    digits = digits_at([
        (109, 50, 8), (40, 20, 4), (10, 20, 2), (19, 21, 3), (49, 20, 5),
        (91, 49, 1), (100, 51, 0), (10, 50, 7),
    ])
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    assert numbers.text.tolist() == ["23", "45", "7", "108"]
    assert numbers.iloc[3][["x0", "y0", "x1", "y1"]].tolist() == [87, 43, 113, 57]
    assert numbers.row.tolist() == [0, 0, 1, 1]


def test_lines_farther_apart_than_the_rise_window_do_not_merge():
    digits = digits_at([(10, 10, 1), (19, 18, 2)])
    assert number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT).text.tolist() == \
        ["1", "2"]


def test_a_page_printed_sideways_reads_like_the_upright_one():
    """The same table turned 90 degrees (as a scan of a sideways page) gives the same numbers,
    rows and neighbours once read in its upright frame."""
    digits = digits_at([(10, 20, 2), (18, 20, 3), (60, 20, 4), (68, 20, 5),
                        (10, 50, 2), (18, 50, 4), (60, 50, 4), (68, 50, 6)])
    upright = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    # the page image is 300 high and 200 wide; reading it upright takes (x, y) -> (y, 199 - x)
    turned = digits.assign(x=199 - digits.y, y=digits.x)
    turned = turned.assign(x0=turned.x - 6, x1=turned.x + 6, y0=turned.y - 4, y1=turned.y + 4)
    frame = ReadingFrame((300, 200), 1.0, 90, pitch=8.0, height=12.0)
    sideways = number_table(turned, group_numbers(turned, frame), frame)
    assert sideways.text.tolist() == upright.text.tolist() == ["23", "45", "24", "46"]
    assert sideways.row.tolist() == upright.row.tolist() == [0, 0, 1, 1]
    np.testing.assert_array_equal(row_neighbours(sideways, frame), [1, -1, 3, -1])
    np.testing.assert_array_equal(column_neighbours(sideways, frame), [2, 3, -1, -1])


def test_neighbours_in_row_and_column():
    # a 3 x 2 grid of two-digit numbers, rows 30 px apart, columns 60 px apart
    rows = []
    for r in range(3):
        for c in range(2):
            rows += [(20 + 60 * c, 20 + 30 * r, r), (28 + 60 * c, 20 + 30 * r, c)]
    digits = digits_at(rows)
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    assert numbers.text.tolist() == ["00", "01", "10", "11", "20", "21"]
    np.testing.assert_array_equal(row_neighbours(numbers, UPRIGHT), [1, -1, 3, -1, 5, -1])
    np.testing.assert_array_equal(column_neighbours(numbers, UPRIGHT), [2, 3, 4, 5, -1, -1])


def test_no_digits():
    empty = digits_at([])
    assert len(group_numbers(empty, UPRIGHT)) == 0
    assert number_table(empty, group_numbers(empty, UPRIGHT), UPRIGHT).empty


def test_lines_set_close_with_hanging_figures_stay_apart_and_are_each_others_neighbours():
    """Tables are often set with lines about 1.25 digit heights apart, old-style figures
    hanging a quarter height below or rising above: each number's row neighbour is on its own
    line, and its column neighbour is on the very next line, not two lines down."""
    step = 1.25 * UPRIGHT.height
    rise = [0.0, 0.25, -0.25, 0.2]  # per line: figures hanging (+) or rising (-), in heights
    rows = []
    for line, shift in enumerate(rise):
        y = 20 + line * step
        rows += [(10, y, line), (18, y, 5),  # a two-digit number at the left of the line
                 (60, y - shift * UPRIGHT.height, 7), (68, y - shift * UPRIGHT.height, 3)]
    digits = digits_at(rows)
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    assert numbers.row.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(row_neighbours(numbers, UPRIGHT),
                                  [1, -1, 3, -1, 5, -1, 7, -1])
    np.testing.assert_array_equal(column_neighbours(numbers, UPRIGHT),
                                  [2, 3, 4, 5, 6, 7, -1, -1])


def _numbers_at(extents):
    """Numbers given only by their upright (ux0, ux1, uy), as the neighbour rules read them."""
    return pd.DataFrame(extents, columns=["ux0", "ux1", "uy"], dtype=float)


def test_column_neighbour_is_the_nearest_overlapping_number_in_another_line_below():
    """The documented rule at its edges: extents widened by COLUMN_SLACK pitches on each side
    must overlap (touching is not overlapping); the centre must lie more than NEIGHBOUR_RISE
    and at most COLUMN_REACH heights lower; of several, the nearest."""
    slack = 2 * COLUMN_SLACK * UPRIGHT.pitch  # the gap two widened extents close
    rise, reach = NEIGHBOUR_RISE * UPRIGHT.height, COLUMN_REACH * UPRIGHT.height

    def below(*extents):
        return column_neighbours(_numbers_at(extents), UPRIGHT).tolist()

    assert below((0, 16, 0), (0, 16, 20)) == [1, -1]
    assert below((0, 16, 0), (16 + slack - 1, 40, 20)) == [1, -1]
    assert below((0, 16, 0), (16 + slack, 40, 20)) == [-1, -1]
    assert below((0, 16, 0), (-24, -slack + 1, 20)) == [1, -1]
    assert below((0, 16, 0), (-24, -slack, 20)) == [-1, -1]
    assert below((0, 16, 0), (0, 16, rise)) == [-1, -1]
    assert below((0, 16, 0), (0, 16, reach)) == [1, -1]
    assert below((0, 16, 0), (0, 16, reach + 1)) == [-1, -1]
    assert below((0, 16, 0), (0, 16, 40), (0, 16, 20)) == [2, -1, 1]
    assert below((0, 16, 0)) == [-1]


def test_row_neighbour_is_the_nearest_number_to_the_right_within_the_documented_window():
    """At most CELL_GAP pitches past the right edge and NEIGHBOUR_RISE heights above or below;
    of several, the nearest; a number overlapping by a pixel still follows, one starting at
    the same left edge or a whole pitch back does not."""
    gap, rise = CELL_GAP * UPRIGHT.pitch, NEIGHBOUR_RISE * UPRIGHT.height

    def right(*extents):
        return row_neighbours(_numbers_at(extents), UPRIGHT).tolist()

    assert right((0, 16, 0), (20, 36, 0)) == [1, -1]
    assert right((0, 16, 0), (16 + gap, 40 + gap, 0)) == [1, -1]
    assert right((0, 16, 0), (17 + gap, 40 + gap, 0)) == [-1, -1]
    assert right((0, 16, 0), (20, 36, rise)) == [1, -1]
    assert right((0, 16, 0), (20, 36, -rise - 0.01)) == [-1, -1]
    assert right((0, 16, 0), (60, 76, 0), (20, 36, 0)) == [2, -1, 1]
    assert right((0, 16, 0), (15, 31, 0)) == [1, -1]
    assert right((0, 16, 0), (16 - UPRIGHT.pitch, 30, 0)) == [-1, -1]
    assert right((0, 2, 0), (0, 20, 2)) == [-1, -1]  # same left edge, overlapping


def test_row_summary_labels_each_row_by_its_first_number_and_boxes_it():
    digits = digits_at([(49, 20, 5), (40, 20, 4), (10, 20, 2), (19, 21, 3),
                        (10, 50, 7), (91, 49, 1), (100, 51, 0)])
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    rows = row_summary(numbers)
    assert rows.label.tolist() == ["23", "7"]
    assert rows.text.tolist() == ["23 45", "7 10"]
    assert rows.loc[1, ["x0", "y0", "x1", "y1"]].tolist() == [6, 43, 104, 57]
