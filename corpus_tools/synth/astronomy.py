"""Numbers of early-modern astronomical tables, computed from the astronomy of the period.

Every table is a :class:`TableContent`: a grid of non-negative integers (the printed numbers),
with column descriptions. Sexagesimal quantities (degrees and minutes, hours and minutes) take
two columns, one per printed number, as in the sources. The same table type with other parameters
(obliquity of the ecliptic, radius of the sine table, planet) gives other numbers, so a corpus has
"same type, different numbers" as well as "same numbers".

All angles in the parameters are in degrees; obliquities in degrees as decimal fractions
(23.5 = 23 deg 30 min).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

#: Obliquities of the ecliptic used by period authors: 23 deg 28', 23 deg 30', 23 deg 33', 23 deg 51'.
OBLIQUITIES = (23 + 28 / 60, 23.5, 23 + 33 / 60, 23 + 51 / 60)

SIGNS_LATIN = (
    "Aries", "Taurus", "Gemini", "Cancer", "Leo", "Virgo",
    "Libra", "Scorpius", "Sagittarius", "Capricornus", "Aquarius", "Pisces",
)

#: Mean daily motions in degrees (Alfonsine values, and slightly different later values).
MEAN_DAILY_MOTION = {
    "sun": (0.98564734, 0.98564721),
    "moon": (13.17639648, 13.17638836),
    "saturn": (0.03349795, 0.03349822),
    "jupiter": (0.08309128, 0.08309155),
    "mars": (0.52403255, 0.52403214),
}


@dataclass(frozen=True)
class Column:
    """One printed column of numbers.

    ``key`` names the quantity (``"lat_deg"``), ``group`` the header over a pair of columns
    (``"Aries"``, ``"latitude"``), ``unit`` the small header under it (``"G"``, ``"M"``, ``"H"``).
    """

    key: str
    group: str
    unit: str


@dataclass(frozen=True)
class TableContent:
    """The numbers of one table before any printing: ``rows[r][c]`` belongs to ``columns[c]``.

    Column 0 is the argument (degree of the sign, climate, day). ``row_labels`` are optional words
    printed before the numbers ("principium", "medium", "finis"), one per row or empty.
    """

    table_type: str
    params: dict
    columns: tuple[Column, ...]
    rows: tuple[tuple[int, ...], ...]
    row_labels: tuple[str, ...] = field(default=())


def sexagesimal(value: float, unit: float = 1.0) -> tuple[int, int]:
    """Split ``value`` (in ``unit``) into whole units and minutes, rounded to the nearest minute."""
    total = round(value / unit * 60)
    return divmod(total, 60)


def declination(longitude_deg: float, obliquity_deg: float) -> float:
    """Solar declination in degrees: asin(sin(eps) sin(lambda))."""
    eps, lam = math.radians(obliquity_deg), math.radians(longitude_deg)
    return math.degrees(math.asin(math.sin(eps) * math.sin(lam)))


def right_ascension(longitude_deg: float, obliquity_deg: float) -> float:
    """Right ascension in degrees (0-360): atan2(cos(eps) sin(lambda), cos(lambda))."""
    eps, lam = math.radians(obliquity_deg), math.radians(longitude_deg)
    return math.degrees(math.atan2(math.cos(eps) * math.sin(lam), math.cos(lam))) % 360


def latitude_of_longest_day(hours: float, obliquity_deg: float) -> float:
    """Latitude in degrees where the longest day lasts ``hours``: tan(phi) = -cos(H) / tan(eps).

    H = hours / 2 * 15 deg is the semi-diurnal arc of the sun at the summer solstice;
    24 hours or more gives the polar circle, 90 - eps.
    """
    if hours >= 24:
        return 90 - obliquity_deg
    half_arc = math.radians(hours / 2 * 15)
    return math.degrees(math.atan(-math.cos(half_arc) / math.tan(math.radians(obliquity_deg))))


def _deg_min_columns(group: str, prefix: str) -> tuple[Column, Column]:
    return Column(f"{prefix}_deg", group, "G"), Column(f"{prefix}_min", group, "M")


def climate_table(climates: int, obliquity: float) -> TableContent:
    """Climates with their longest day (hours, minutes) and latitude (degrees, minutes).

    7 or 9 climates: the beginning, middle and end of each, the longest day growing by a quarter
    hour from 12h 45m; 24 climates: one row each, the longest day growing by half an hour
    from 12h 30m up to 24h.
    """
    if climates in (7, 9):
        days = [12.75 + 0.25 * k for k in range(2 * climates + 1)]
        numbers = [1 + max(0, k - 1) // 2 for k in range(len(days))]
        labels = tuple("medium" if k % 2 else ("principium" if k == 0 else "finis")
                       for k in range(len(days)))
    elif climates == 24:
        days = [12.5 + 0.5 * k for k in range(24)]
        numbers = list(range(1, 25))
        labels = ()
    else:
        raise ValueError(f"climates must be 7, 9 or 24, not {climates}")
    rows = []
    for number, day in zip(numbers, days, strict=True):
        hours, minutes = sexagesimal(day)
        lat_deg, lat_min = sexagesimal(latitude_of_longest_day(day, obliquity))
        rows.append((number, hours, minutes, lat_deg, lat_min))
    columns = (
        Column("climate", "climate", ""),
        Column("day_hours", "longest day", "H"),
        Column("day_min", "longest day", "M"),
        *_deg_min_columns("latitude", "lat"),
    )
    return TableContent("climate", {"climates": climates, "obliquity": obliquity},
                        columns, tuple(rows), labels)


def declination_table(obliquity: float, signs: int = 0) -> TableContent:
    """Solar declination for each degree 1-30 of three signs (``signs`` = 0: Aries-Gemini)."""
    return _per_degree_of_signs(
        "declination", lambda longitude, eps: abs(declination(longitude, eps)), obliquity, signs)


def right_ascension_table(obliquity: float, signs: int = 0) -> TableContent:
    """Right ascension for each degree 1-30 of three signs (``signs`` 0-3: quarters of the zodiac)."""
    return _per_degree_of_signs("right_ascension", right_ascension, obliquity, signs)


def _per_degree_of_signs(kind: str, quantity, obliquity: float, signs: int) -> TableContent:
    """A table of ``quantity(longitude, obliquity)`` (degrees) for each degree 1-30 of three
    signs, one degree/minute column pair per sign."""
    names = SIGNS_LATIN[3 * signs: 3 * signs + 3]
    columns = [Column("degree", "degree", "")]
    for name in names:
        columns.extend(_deg_min_columns(name, name.lower()))
    rows = []
    for degree in range(1, 31):
        row = [degree]
        for k in range(3):
            row.extend(sexagesimal(quantity(90 * signs + 30 * k + degree, obliquity)))
        rows.append(tuple(row))
    return TableContent(kind, {"obliquity": obliquity, "signs": signs}, tuple(columns),
                        tuple(rows))


def sine_table(radius: int, start: int = 1, kind: str = "sine") -> TableContent:
    """Sines (radius * sin a) or chords (2 * radius * sin(a / 2)) for 30 arcs from ``start`` deg.

    Radius 60 prints parts, minutes and seconds (sexagesimal); larger radii (10000, 100000)
    print one whole number.
    """
    if kind not in ("sine", "chord"):
        raise ValueError(f"kind must be 'sine' or 'chord', not {kind!r}")
    if radius == 60:
        columns = (Column("arc", "arc", ""), Column("parts", kind, "P"),
                   Column("min", kind, "M"), Column("sec", kind, "S"))
    else:
        columns = (Column("arc", "arc", ""), Column("value", kind, ""))
    rows = []
    for arc in range(start, start + 30):
        angle = math.radians(arc)
        value = radius * (math.sin(angle) if kind == "sine" else 2 * math.sin(angle / 2))
        if radius == 60:
            seconds = round(value * 3600)
            rows.append((arc, seconds // 3600, seconds // 60 % 60, seconds % 60))
        else:
            rows.append((arc, round(value)))
    return TableContent(kind, {"radius": radius, "start": start}, columns, tuple(rows))


def mean_motion_table(planet: str, source: int = 0, unit_days: int = 1) -> TableContent:
    """Mean motion of ``planet`` after 1-30 periods of ``unit_days`` days.

    Printed as signs (of 30 deg), degrees, minutes and seconds of the position reduced modulo
    360 deg; ``source`` picks one of the period rates in :data:`MEAN_DAILY_MOTION`.
    """
    rate = MEAN_DAILY_MOTION[planet][source]
    columns = (Column("periods", "days" if unit_days == 1 else "periods", ""),
               Column("signs", planet, "S"), Column("deg", planet, "G"),
               Column("min", planet, "M"), Column("sec", planet, "2a"))
    rows = []
    for periods in range(1, 31):
        seconds = round(periods * unit_days * rate * 3600) % (360 * 3600)
        degrees, rest = divmod(seconds, 3600)
        rows.append((periods, degrees // 30, degrees % 30, rest // 60, rest % 60))
    return TableContent("mean_motion", {"planet": planet, "source": source, "unit_days": unit_days},
                        columns, tuple(rows))


TABLE_TYPES = ("climate", "declination", "right_ascension", "sine", "chord", "mean_motion")


def random_table(rng) -> TableContent:
    """Draw a table type and its period parameters with ``rng`` (a numpy Generator)."""
    table_type = TABLE_TYPES[rng.integers(len(TABLE_TYPES))]
    obliquity = float(OBLIQUITIES[rng.integers(len(OBLIQUITIES))])
    if table_type == "climate":
        return climate_table(int(rng.choice([7, 9, 24])), obliquity)
    if table_type == "declination":
        return declination_table(obliquity, int(rng.integers(2)))
    if table_type == "right_ascension":
        return right_ascension_table(obliquity, int(rng.integers(4)))
    if table_type in ("sine", "chord"):
        return sine_table(int(rng.choice([60, 10000, 100000])), int(rng.choice([1, 31, 61])),
                          table_type)
    planet = sorted(MEAN_DAILY_MOTION)[rng.integers(len(MEAN_DAILY_MOTION))]
    return mean_motion_table(planet, int(rng.integers(2)), int(rng.choice([1, 20])))


def transcribed_table(path, table_type: str, groups: dict[str, tuple[str, str]]
                      ) -> TableContent:
    """A table transcribed from a real page (CSV: ``#`` comment lines, a header, one row per
    printed row; column 0 the argument, an optional ``label`` column of row words such as
    "principium"), to print synthetic editions of the same numbers.

    ``groups`` maps each number column to its (header group, unit), e.g. ``{"lat_deg":
    ("latitude", "G")}``; columns not named there, except the argument and ``label``, are
    refused.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        numbered = [(n, line) for n, line in enumerate(handle, 1) if not line.startswith("#")]
    reader = csv.DictReader(line for _, line in numbered)
    argument, *rest = reader.fieldnames or [""]
    keys = [key for key in rest if key != "label"]
    unknown = [key for key in keys if key not in groups]
    if unknown:
        raise ValueError(f"{path}: columns {unknown} have no header group")
    rows, labels = [], []
    for (line, _), record in zip(numbered[1:], reader, strict=True):
        try:
            rows.append(tuple(int(record[key]) for key in (argument, *keys)))
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: line {line}: not a whole number ({error})") from None
        labels.append(record.get("label") or "")
    columns = (Column(argument, argument, ""),
               *(Column(key, *groups[key]) for key in keys))
    return TableContent(table_type, {"transcribed": Path(path).stem}, columns, tuple(rows),
                        tuple(labels) if any(labels) else ())
