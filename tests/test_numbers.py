"""Reading detected digits as a table: numbers, rows and column neighbours, upright."""

import numpy as np
import pandas as pd
import pytest

from digit_detector.reading import NEIGHBOUR_RISE
from sphaera_tables.numbers import (
    CELL_GAP,
    COLUMN_REACH,
    COLUMN_SLACK,
    NUMBER_COLUMNS,
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


def test_number_chains_gives_int64_indices_also_for_no_digit_and_a_lone_digit():
    """Both arrays are (len(digits),) int64 (they index the digit and number tables): for no
    digit, for a lone digit (one number, no next digit) and for a page of numbers."""
    from sphaera_tables.numbers import number_chains

    cases = {0: [], 1: [(40, 20, 7)], 4: [(10, 20, 2), (18, 20, 3), (10, 50, 4), (60, 50, 5)]}
    for count, rows in cases.items():
        following, number = number_chains(digits_at(rows), UPRIGHT)
        assert following.dtype == number.dtype == np.int64
        assert len(following) == len(number) == count
    following, number = number_chains(digits_at(cases[1]), UPRIGHT)
    assert following.tolist() == [-1] and number.tolist() == [0]
    following, number = number_chains(digits_at(cases[4]), UPRIGHT)
    assert following.tolist() == [1, -1, -1, -1] and number.tolist() == [0, 0, 1, 2]


def test_a_lone_digit_is_a_number_of_one_digit():
    digits = digits_at([(40, 20, 7)], score=0.6)
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    assert numbers.text.tolist() == ["7"] and numbers.row.tolist() == [0]
    assert numbers.iloc[0][["x0", "y0", "x1", "y1", "strength"]].tolist() == [36, 14, 44, 26,
                                                                              0.6]


def test_an_empty_number_table_has_the_columns_and_types_of_a_full_one():
    """A page without digits concatenates with others without turning texts into floats or
    rows into floats."""
    digits = digits_at([(10, 20, 2), (18, 20, 3), (10, 50, 4)])
    full = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    empty = number_table(digits_at([]), np.zeros(0, dtype=np.int64), UPRIGHT)
    assert list(empty.columns) == list(full.columns) == NUMBER_COLUMNS
    assert empty.dtypes.to_dict() == full.dtypes.to_dict()
    assert pd.api.types.is_string_dtype(full.text) and full.dtypes["row"] == np.int64
    assert all(full.dtypes[c] == np.float64 for c in NUMBER_COLUMNS if c not in ("text", "row"))


def test_a_number_reaches_half_a_pitch_beyond_its_outer_digit_centres():
    """Upright extent ux0..ux1: from half a pitch before the first digit's centre to half a
    pitch after the last (the digits' own boxes when boxes are a pitch wide); ux, uy are the
    mean centre and strength the weakest digit's score. In a frame that halves the page, the
    extent is half as long (in working px) and the pitch is the frame's."""
    digits = digits_at([(10, 20, 2), (19, 22, 3), (27, 21, 5)]).assign(score=[0.9, 0.5, 0.7])
    numbers = number_table(digits, group_numbers(digits, UPRIGHT), UPRIGHT)
    assert numbers.text.tolist() == ["235"]
    row = numbers.iloc[0]
    assert [row.ux0, row.ux1] == [10 - 4, 27 + 4] == [row.x0, row.x1]
    assert row.ux == pytest.approx((10 + 19 + 27) / 3) and row.uy == pytest.approx(21)
    assert row.strength == 0.5
    half = ReadingFrame((200, 300), 0.5, 0, pitch=4.0, height=6.0)
    ux, _ = half.upright(np.array([10.0, 27.0]), np.array([20.0, 20.0]))
    numbers = number_table(digits, group_numbers(digits, half), half)
    assert numbers.text.tolist() == ["235"]
    assert numbers.ux0[0] == pytest.approx(ux[0] - 2)
    assert numbers.ux1[0] == pytest.approx(ux[1] + 2)


def test_a_number_overlapping_by_half_a_pitch_or_more_is_no_row_neighbour():
    """A number starting less than half a pitch before this one's right edge follows it (a
    crowded cell); one starting half a pitch or more before it does not (digits read twice)."""
    half = 0.5 * UPRIGHT.pitch
    extents = [(0, 16, 0), (16 - half + 0.01, 40, 0)]
    assert row_neighbours(_numbers_at(extents), UPRIGHT).tolist() == [1, -1]
    extents = [(0, 16, 0), (16 - half, 40, 0)]
    assert row_neighbours(_numbers_at(extents), UPRIGHT).tolist() == [-1, -1]
