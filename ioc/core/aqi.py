"""Query step for air quality: VN_AQI (Decision 1459/QĐ-TCMT) sub-indices, NowCast, categories.

Pure functions over hourly means in µg/m³. Conventions where the decision leaves room:
- the hourly AQI of PM2.5 and PM10 uses NowCast over the last 12 hourly means; the gases use the
  latest 1-hour mean (O3 uses the 1-hour table);
- NowCast skips missing hours in both sums of its weighted mean, and needs at least 2 of the 3
  most recent hours, else there is no value;
- a concentration above the table's last breakpoint gives 500;
- AQI values are published as integers and the categories are integer bands (0-50, 51-100, ...),
  so values are rounded up: 50.2 is shown as 51, in the second band, never under-stating;
- the overall AQI is the largest sub-index and exists only if PM2.5 or PM10 has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Final

POLLUTANT_TABLES: Final[dict[str, str]] = {
    "pm25": "pm25",
    "pm10": "pm10",
    "no2": "no2",
    "so2": "so2",
    "co": "co",
    "o3": "o3_1h",
}
PM_POLLUTANTS: Final[tuple[str, ...]] = ("pm25", "pm10")
NOWCAST_HOURS: Final = 12
_ENGLISH_NAMES: Final[tuple[str, ...]] = (
    "Good",
    "Moderate",
    "Poor",
    "Bad",
    "Very bad",
    "Hazardous",
)


@dataclass(frozen=True)
class Category:
    """One band of the VN_AQI scale, as published (Vietnamese names, colour)."""

    low: int
    high: int
    name_vi: str
    name_en: str
    colour_vi: str
    hex: str
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class AqiTable:
    """Index breakpoints, concentration breakpoints per pollutant and the categories."""

    index: tuple[float, ...]
    breakpoints: Mapping[str, tuple[float, ...]]
    categories: tuple[Category, ...]


@dataclass(frozen=True)
class AqiResult:
    """Hourly AQI of one station: the overall value, the pollutant that set it, every sub-index."""

    aqi: int | None
    dominant: str | None
    sub_indices: Mapping[str, int]


@lru_cache(maxsize=1)
def load_table() -> AqiTable:
    """The VN_AQI tables shipped as package data ioc/core/data/vn_aqi.json."""
    text = resources.files("ioc.core.data").joinpath("vn_aqi.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    index = tuple(float(v) for v in raw["I"])
    breakpoints: dict[str, tuple[float, ...]] = {}
    for pollutant, table_name in POLLUTANT_TABLES.items():
        values = raw["BP"][table_name]
        if len(values) != len(index) or any(v is None for v in values):
            raise ValueError(f"VN_AQI table {table_name} does not cover every index breakpoint")
        breakpoints[pollutant] = tuple(float(v) for v in values)
    categories = tuple(
        Category(
            low=int(c["range"][0]),
            high=int(c["range"][1]),
            name_vi=str(c["name"]),
            name_en=name_en,
            colour_vi=str(c["colour"]),
            hex=str(c["hex"]),
            rgb=(int(c["rgb"][0]), int(c["rgb"][1]), int(c["rgb"][2])),
        )
        for c, name_en in zip(raw["categories"], _ENGLISH_NAMES, strict=True)
    )
    return AqiTable(index=index, breakpoints=breakpoints, categories=categories)


def round_up(value: float) -> int:
    """Round an index up to an integer, ignoring float noise (70.0000000001 stays 70)."""
    return math.ceil(round(value, 6))


def sub_index(pollutant: str, concentration: float) -> float:
    """Unrounded sub-index: linear between the breakpoints around the concentration."""
    if concentration < 0 or math.isnan(concentration):
        raise ValueError(f"concentration {concentration} of {pollutant} is not a valid value")
    table = load_table()
    bps = table.breakpoints[pollutant]
    index = table.index
    if concentration >= bps[-1]:
        return index[-1]
    for i in range(1, len(bps)):
        if concentration <= bps[i]:
            lo_c, hi_c = bps[i - 1], bps[i]
            lo_i, hi_i = index[i - 1], index[i]
            return lo_i + (concentration - lo_c) * (hi_i - lo_i) / (hi_c - lo_c)
    raise AssertionError("unreachable: the last breakpoint is handled above")


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """NowCast of hourly means, newest first; None unless 2 of the last 3 hours are present."""
    recent = hourly[:NOWCAST_HOURS]
    if sum(c is not None for c in recent[:3]) < 2:
        return None
    present = [(age, c) for age, c in enumerate(recent) if c is not None]
    c_max = max(c for _, c in present)
    if c_max <= 0:
        return 0.0
    c_min = min(c for _, c in present)
    w = max(0.5, c_min / c_max)
    num = sum(w**age * c for age, c in present)
    den = sum(w**age for age, _ in present)
    return num / den


def hourly_aqi(hours: Mapping[str, Sequence[float | None]]) -> AqiResult:
    """Hourly VN_AQI of a station from its hourly means per pollutant, newest hour first.

    PM uses NowCast over the sequence; the gases use its first (latest) hour.
    """
    subs: dict[str, float] = {}
    for pollutant in POLLUTANT_TABLES:
        series = hours.get(pollutant)
        if not series:
            continue
        conc = nowcast(series) if pollutant in PM_POLLUTANTS else series[0]
        if conc is not None:
            subs[pollutant] = sub_index(pollutant, conc)
    rounded = {p: round_up(v) for p, v in subs.items()}
    if not any(p in subs for p in PM_POLLUTANTS):
        return AqiResult(aqi=None, dominant=None, sub_indices=rounded)
    dominant = max(subs, key=lambda p: subs[p])
    return AqiResult(aqi=round_up(subs[dominant]), dominant=dominant, sub_indices=rounded)


def category(aqi: float) -> Category:
    """The band an AQI value falls in; fractional values count as rounded up."""
    if aqi < 0 or math.isnan(aqi):
        raise ValueError(f"AQI {aqi} is not a valid index")
    value = round_up(aqi)
    cats = load_table().categories
    for cat in cats:
        if value <= cat.high:
            return cat
    return cats[-1]
