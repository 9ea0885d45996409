"""Map step: how each KPI is shown - kind, better direction, texts, choropleth colour classes."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ioc.core.aqi import category, load_table
from layouts.i18n import DASH, Lang, fmt_duration, fmt_number, fmt_percent, fmt_vnd

Kind = Literal["count", "share", "vnd", "hours", "rating", "aqi", "ugm3"]
Better = Literal["higher", "lower", "neutral"]

NO_DATA: Final = "#3a4150"
STALE: Final = "#5c6270"
# Five classes each; colour-blind-safe-ish ramps that read on a dark background.
RAMP_GOOD_HIGH: Final = ("#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")
RAMP_BAD_HIGH: Final = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
RAMP_NEUTRAL: Final = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
SHARE_BREAKS: Final = (0.5, 0.65, 0.8, 0.9)
RATING_BREAKS: Final = (2.5, 3.0, 3.5, 4.0)


@dataclass(frozen=True)
class KpiSpec:
    """Presentation facts of one KPI (its definition lives in ioc/queries)."""

    key: str
    feed: str
    kind: Kind
    better: Better
    # False for states read "now" from case tables: yesterday's value cannot be rebuilt.
    trend: bool = True


SPECS: Final[tuple[KpiSpec, ...]] = (
    KpiSpec("received", "dossiers", "count", "neutral"),
    KpiSpec("resolved", "dossiers", "count", "neutral"),
    KpiSpec("on_time_rate", "dossiers", "share", "higher"),
    KpiSpec("overdue_backlog", "dossiers", "count", "lower", trend=False),
    KpiSpec("online_share", "dossiers", "share", "higher"),
    KpiSpec("full_online_share", "dossiers", "share", "higher"),
    KpiSpec("mean_processing_hours", "dossiers", "hours", "lower"),
    KpiSpec("transactions", "payments", "count", "neutral"),
    KpiSpec("amount_vnd", "payments", "vnd", "neutral"),
    KpiSpec("cashless_share_public", "payments", "share", "higher"),
    KpiSpec("acceptance_points", "payments", "count", "higher"),
    KpiSpec("open_reports", "feedback", "count", "lower", trend=False),
    KpiSpec("overdue_open", "feedback", "count", "lower", trend=False),
    KpiSpec("resolved_in_time_rate", "feedback", "share", "higher"),
    KpiSpec("median_resolution_hours", "feedback", "hours", "lower"),
    KpiSpec("satisfaction", "feedback", "rating", "higher"),
    KpiSpec("aqi", "air_quality", "aqi", "lower"),
    KpiSpec("pm25", "air_quality", "ugm3", "lower"),
    KpiSpec("hours_over_100_today", "air_quality", "count", "lower"),
)
BY_KEY: Final[Mapping[str, KpiSpec]] = {s.key: s for s in SPECS}


def is_missing(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def fmt_value(spec: KpiSpec, value: float | None, lang: Lang) -> str:
    """A KPI value as shown on a tile or in a table."""
    if is_missing(value):
        return DASH
    assert value is not None  # noqa: S101 - narrowed by is_missing
    match spec.kind:
        case "share":
            return fmt_percent(value, lang)
        case "vnd":
            return fmt_vnd(value, lang, compact=True)
        case "hours":
            return fmt_duration(value * 3600.0, lang)
        case "rating":
            return f"{fmt_number(value, lang, 2)} / 5"
        case "ugm3":
            return f"{fmt_number(value, lang, 1)} µg/m³"
        case _:
            return fmt_number(value, lang)


def fmt_trend(spec: KpiSpec, now: float | None, before: float | None, lang: Lang) -> str:
    """Change against the same time yesterday: points for shares, % for amounts, units else."""
    if not spec.trend or is_missing(now) or is_missing(before):
        return DASH
    assert now is not None and before is not None  # noqa: S101
    diff = now - before
    arrow = "▲" if diff > 0 else "▼" if diff < 0 else "="
    if spec.kind == "share":
        unit = " điểm" if lang == "vi" else " pts"
        return f"{arrow} {fmt_number(abs(diff) * 100.0, lang, 1)}{unit}"
    if spec.kind in ("count", "vnd") and spec.key not in ("hours_over_100_today",):
        if before == 0:
            return f"{arrow} {fmt_number(abs(diff), lang)}"
        return f"{arrow} {fmt_percent(abs(diff) / abs(before), lang, 0)}"
    digits = 0 if spec.kind in ("aqi", "count") else 1
    return f"{arrow} {fmt_number(abs(diff), lang, digits)}"


def trend_tone(spec: KpiSpec, now: float | None, before: float | None) -> str:
    """'good', 'bad' or 'flat' for colouring the trend."""
    if not spec.trend or is_missing(now) or is_missing(before) or spec.better == "neutral":
        return "flat"
    assert now is not None and before is not None  # noqa: S101
    if now == before:
        return "flat"
    return "good" if (now > before) == (spec.better == "higher") else "bad"


def nice_step(top: float) -> float:
    """A round class width such that 5 classes cover [0, top]: 1, 2, 2.5 or 5 times 10^k."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    raw = top / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * power:
            return max(1.0, m * power)
    return 10.0 * power  # pragma: no cover - the loop always returns


def breaks_for(spec: KpiSpec, values: list[float]) -> tuple[float, ...]:
    """The four inner class breaks of a non-AQI KPI, fixed for shares and ratings and round
    numbers from the largest ward value otherwise."""
    if spec.kind == "share":
        return SHARE_BREAKS
    if spec.kind == "rating":
        return RATING_BREAKS
    finite = [v for v in values if math.isfinite(v)]
    step = nice_step(max(finite, default=0.0))
    return (step, 2 * step, 3 * step, 4 * step)


def ramp(spec: KpiSpec) -> tuple[str, ...]:
    return {"higher": RAMP_GOOD_HIGH, "lower": RAMP_BAD_HIGH, "neutral": RAMP_NEUTRAL}[spec.better]


def class_of(value: float, breaks: tuple[float, ...]) -> int:
    """0..len(breaks): the number of breaks at or below the value."""
    return sum(1 for b in breaks if value >= b)


def colour_of(spec: KpiSpec, value: float | None, breaks: tuple[float, ...]) -> str:
    """The fill colour a KPI value gets on the map."""
    if is_missing(value):
        return NO_DATA
    assert value is not None  # noqa: S101
    if spec.kind == "aqi":
        return category(value).hex
    return ramp(spec)[class_of(value, breaks)]


def legend_entries(spec: KpiSpec, breaks: tuple[float, ...], lang: Lang) -> list[tuple[str, str]]:
    """(colour, label) rows of the map legend, lowest class first, then 'no data'."""
    rows: list[tuple[str, str]] = []
    if spec.kind == "aqi":
        for cat in load_table().categories:
            name = cat.name_vi if lang == "vi" else cat.name_en
            rows.append((cat.hex, f"{cat.low}–{cat.high} {name}"))
    else:
        colours = ramp(spec)
        edges = [fmt_value(spec, b, lang) for b in breaks]
        rows.append((colours[0], f"< {edges[0]}"))
        for i in range(1, len(edges)):
            rows.append((colours[i], f"{edges[i - 1]} – {edges[i]}"))
        rows.append((colours[-1], f"≥ {edges[-1]}"))
    rows.append((NO_DATA, "Không có dữ liệu" if lang == "vi" else "No data"))
    return rows
