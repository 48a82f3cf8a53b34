"""Grouping detected digits into printed numbers."""

import pandas as pd

from sphaera_tables.numbers import group_numbers, number_table


def digits_at(rows):
    """Digit boxes 8 px wide, 12 px high, centred at (x, y)."""
    frame = pd.DataFrame(rows, columns=["x", "y", "digit"])
    return frame.assign(x0=frame.x - 4, x1=frame.x + 4, y0=frame.y - 6, y1=frame.y + 6)


def test_digits_on_a_line_at_digit_pitch_form_numbers_in_reading_order():
    # row 1: "23" "45"   row 2: "7" "108" (with a slightly uneven baseline)
    digits = digits_at([
        (109, 50, 8), (40, 20, 4), (10, 20, 2), (19, 21, 3), (49, 20, 5),
        (91, 49, 1), (100, 51, 0), (10, 50, 7),
    ])
    numbers = number_table(digits, group_numbers(digits))
    assert numbers.text.tolist() == ["23", "45", "7", "108"]
    assert numbers.iloc[3][["x0", "y0", "x1", "y1"]].tolist() == [87, 43, 113, 57]


def test_lines_farther_apart_than_half_a_digit_do_not_merge():
    digits = digits_at([(10, 10, 1), (19, 17, 2)])
    assert number_table(digits, group_numbers(digits)).text.tolist() == ["1", "2"]


def test_no_digits():
    empty = digits_at([])
    assert len(group_numbers(empty)) == 0
    assert number_table(empty, group_numbers(empty)).empty
