"""The numbers of the synthetic tables follow the astronomy of the period (known answers and
independent recomputation)."""

import math
from pathlib import Path

import numpy as np
import pytest

from corpus_tools.synth import astronomy


def _dm(value):
    total = round(value * 60)
    return total // 60, total % 60


def test_declination_recomputed_independently():
    for obliquity in astronomy.OBLIQUITIES:
        table = astronomy.declination_table(obliquity, signs=0)
        for row in (0, 9, 29):
            for sign in range(3):
                longitude = math.radians(30 * sign + row + 1)
                expected = math.degrees(math.asin(math.sin(math.radians(obliquity))
                                                  * math.sin(longitude)))
                assert table.rows[row][1 + 2 * sign: 3 + 2 * sign] == _dm(expected)


def test_declination_known_answers():
    # At the solstice (30 Gemini) the declination equals the obliquity, 23 deg 30 min.
    assert astronomy.declination_table(23.5).rows[29][5:7] == (23, 30)
    assert astronomy.declination_table(23 + 51 / 60).rows[29][5:7] == (23, 51)
    # 30 Aries: sin(dec) = sin(23.5) sin(30) -> 11 deg 30 min (printed 11 30 in the sources).
    assert astronomy.declination_table(23.5).rows[29][1:3] == (11, 30)


def test_right_ascension_known_answers_and_formula():
    table = astronomy.right_ascension_table(23.5, signs=0)
    assert table.rows[29][5:7] == (90, 0)          # 30 Gemini: the solstitial colure
    expected = math.degrees(math.atan(math.cos(math.radians(23.5)) * math.tan(math.radians(30))))
    assert table.rows[29][1:3] == _dm(expected) == (27, 54)
    later = astronomy.right_ascension_table(23.5, signs=2)   # Libra..Sagittarius
    assert later.rows[29][1:3] == (207, 54)


def test_climates_match_the_printed_1604_table():
    # The real Pifferi 1604 page (../shared/data/real/tables) prints 13h -> 16 deg 43 min.
    table = astronomy.climate_table(7, 23.5)
    by_day = {(row[1], row[2]): (row[3], row[4]) for row in table.rows}
    assert by_day[(13, 0)] == (16, 43)
    assert len(table.rows) == 15 and table.row_labels[:3] == ("principium", "medium", "finis")
    for (hours, minutes), latitude in by_day.items():
        half_arc = math.radians((hours + minutes / 60) * 7.5)
        phi = math.degrees(math.atan(-math.cos(half_arc) / math.tan(math.radians(23.5))))
        assert latitude == _dm(phi)


def test_24_climates_end_at_the_polar_circle():
    table = astronomy.climate_table(24, 23.5)
    assert len(table.rows) == 24
    assert table.rows[-1][1:] == (24, 0, 66, 30)
    latitudes = [row[3] * 60 + row[4] for row in table.rows]
    assert latitudes == sorted(latitudes)


def test_sines_and_chords():
    assert astronomy.sine_table(60, 1).rows[29] == (30, 30, 0, 0)           # 60 sin 30
    assert astronomy.sine_table(10000, 61).rows[29] == (90, 10000)
    assert astronomy.sine_table(100000, 31).rows[0] == (31, round(1e5 * math.sin(math.radians(31))))
    assert astronomy.sine_table(60, 31, "chord").rows[29] == (60, 60, 0, 0)  # chord 60 = radius
    with pytest.raises(ValueError, match="kind"):
        astronomy.sine_table(60, 1, "tangent")


def test_mean_motion_of_the_sun_alfonsine():
    table = astronomy.mean_motion_table("sun", source=0, unit_days=1)
    assert table.rows[0] == (1, 0, 0, 59, 8)             # 0;59,8 per day
    assert table.rows[29][1:3] == (0, 29)                # 30 days: 29 deg 34 min
    rate = astronomy.MEAN_DAILY_MOTION["moon"][1]
    moon = astronomy.mean_motion_table("moon", source=1, unit_days=20)
    seconds = round(7 * 20 * rate * 3600) % (360 * 3600)
    assert moon.rows[6][1:] == (seconds // 3600 // 30, seconds // 3600 % 30,
                                seconds % 3600 // 60, seconds % 60)


def test_same_type_different_parameters_give_different_numbers():
    a = astronomy.declination_table(23.5)
    b = astronomy.declination_table(23 + 28 / 60)
    assert a.table_type == b.table_type and a.rows != b.rows
    assert astronomy.climate_table(9, 23.5).rows[:19] != astronomy.climate_table(7, 23.5).rows
    with pytest.raises(ValueError, match="climates"):
        astronomy.climate_table(8, 23.5)


CLIMATE_GROUPS = {"day_hours": ("longest day", "H"), "day_min": ("longest day", "M"),
                  "lat_deg": ("latitude", "G"), "lat_min": ("latitude", "M")}


def test_the_shipped_1604_transcription_reads_as_printed():
    path = Path(astronomy.__file__).parent / "data" / "climates_pifferi_1604.csv"
    table = astronomy.transcribed_table(path, "climate", CLIMATE_GROUPS)
    assert len(table.rows) == 36 and len(table.row_labels) == 36
    assert table.rows[0] == (1, 12, 0, 0, 0)
    assert table.rows[7] == (7, 13, 30, 23, 11)  # printed so, a misprint of about 24 10
    assert table.row_labels[3:6] == ("principium", "medium", "finis")
    # the longest day grows by a quarter hour from parallel to parallel, as on the page
    days = sorted({row[1] * 60 + row[2] for row in table.rows})
    assert np.all(np.diff(days) == 15)


def test_a_transcription_with_a_bad_cell_names_its_line(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("# a comment\nparallel,day_hours,day_min\n1,12,0\n2,12,x5\n",
                    encoding="utf-8")
    with pytest.raises(ValueError, match="line 4"):
        astronomy.transcribed_table(path, "climate", CLIMATE_GROUPS)
    path.write_text("parallel,width\n1,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="width"):
        astronomy.transcribed_table(path, "climate", CLIMATE_GROUPS)
