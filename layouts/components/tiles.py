"""Callback step: the city's KPI tiles, whose value, trend and target texts each refresh sets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import pandas as pd
from dash import html

from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.window import CITY
from ioc.core.targets import DashboardConfig
from layouts.i18n import DASH, Lang, fmt_percent, t
from layouts.kpis import SPECS, KpiSpec, fmt_trend, fmt_value, is_missing, trend_tone

TILE: Final = "tile"
VALUE: Final = "tile-value"
TREND: Final = "tile-trend"
TARGET: Final = "tile-target"


@dataclass(frozen=True)
class TileText:
    """What one tile shows after a refresh."""

    value: str
    trend: str
    target: str
    class_name: str


def tile_grid(lang: Lang) -> Any:
    """One column per feed, one clickable tile per KPI (click = show it on the map)."""
    columns = []
    for feed in FEED_NAMES:
        tiles = [
            html.Div(
                [
                    html.Div(t(f"kpi.{spec.key}", lang), className="tile-label"),
                    html.Div(DASH, id={"type": VALUE, "kpi": spec.key}, className="tile-value"),
                    html.Div(
                        [
                            html.Span(DASH, id={"type": TREND, "kpi": spec.key}),
                            html.Span("", id={"type": TARGET, "kpi": spec.key}),
                        ],
                        className="tile-sub",
                    ),
                ],
                id={"type": TILE, "kpi": spec.key},
                className="tile",
                n_clicks=0,
            )
            for spec in SPECS
            if spec.feed == feed
        ]
        columns.append(
            html.Div(
                [html.Div(t(f"feed.{feed}", lang), className="feed-title"), *tiles],
                className=f"feed-col feed-{feed}",
            )
        )
    return html.Div(columns, className="tiles")


def _value(frame: pd.DataFrame, key: str) -> float | None:
    if key not in frame.columns or CITY not in frame.index:
        return None
    raw: Any = frame[key].get(CITY)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def target_text(spec: KpiSpec, value: float | None, target: float | None, lang: Lang) -> str:
    """'Chỉ tiêu 80,0 % · đạt 92,5 %': the target and the share of it achieved."""
    if target is None:
        return ""
    shown = fmt_percent(target, lang, 0) if spec.kind == "share" else fmt_value(spec, target, lang)
    head = f"{t('wall.target', lang)} {shown}"
    if is_missing(value):
        return head
    assert value is not None  # noqa: S101
    achieved = value / target if spec.better != "lower" else (target / value if value else 1.0)
    word = "đạt" if lang == "vi" else "achieved"
    return f"{head} · {word} {fmt_percent(achieved, lang, 0)}"


def tile_texts(
    today: pd.DataFrame,
    yesterday: pd.DataFrame,
    config: DashboardConfig,
    stale_feeds: frozenset[str],
    selected: str,
    lang: Lang,
) -> Mapping[str, TileText]:
    """KPI key -> the tile's texts and classes (stale tiles are greyed, the map's KPI marked)."""
    out: dict[str, TileText] = {}
    for spec in SPECS:
        now = _value(today, spec.key)
        before = _value(yesterday, spec.key)
        target = config.target(spec.key)
        classes = ["tile", f"trend-{trend_tone(spec, now, before)}"]
        if spec.feed in stale_feeds:
            classes.append("stale")
        if spec.key == selected:
            classes.append("selected")
        if target is not None and now is not None:
            met = now >= target if spec.better != "lower" else now <= target
            classes.append("target-met" if met else "target-missed")
        out[spec.key] = TileText(
            value=fmt_value(spec, now, lang),
            trend=fmt_trend(spec, now, before, lang),
            target=target_text(spec, now, target, lang),
            class_name=" ".join(classes),
        )
    return out
