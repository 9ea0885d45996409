"""Pure builders of the ward page: a WardDetail to its KPI table, charts and overdue lists."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

import pandas as pd
from dash import html

from ioc.core.citypack import CityPack
from ioc.core.queries.ward import WardDetail
from layouts.i18n import (
    Lang,
    enum_label,
    fmt_date,
    fmt_datetime,
    fmt_duration,
    fmt_time,
    t,
)
from layouts.kpis import SPECS, fmt_value
from layouts.pages.timeline.view import fmt_moment

BG: Final = "#141a26"
INK: Final = "#e8edf5"
MUTED: Final = "#93a0b5"
COLOURS: Final = ("#4da3ff", "#3ddc84", "#ffc53d", "#ff6b5b", "#b07cff", "#2dd4bf", "#f472b6")
SERIES_LINES: Final = {
    "dossiers": ("received", "resolved"),
    "payments": ("transactions",),
    "feedback": ("submitted", "resolved"),
    "air_quality": ("aqi",),
}


def status_text(as_of: datetime | None, now: datetime, lang: Lang) -> str:
    """The page's "as of" line: the refresh time live, the viewed time when time-travelling."""
    if as_of is None:
        return t("wall.as_of", lang, time=fmt_time(now, seconds=True))
    return t("tt.viewing", lang, time=fmt_moment(as_of))


def status_line(as_of: datetime | None, now: datetime, lang: Lang) -> Any:
    """status_text as the page shows it: marked while time-travelling."""
    text = status_text(as_of, now, lang)
    return text if as_of is None else html.Span(text, className="travel-status")


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def kpi_rows(detail: WardDetail, lang: Lang) -> list[tuple[str, str, str, str]]:
    """(feed, KPI name, ward value, city value) in display order."""
    rows = []
    for spec in SPECS:
        ward = _num(detail.kpis[spec.key].get(detail.ward))
        city = _num(detail.kpis[spec.key].get("city"))
        rows.append(
            (
                t(f"feed.{spec.feed}", lang),
                t(f"kpi.{spec.key}", lang),
                fmt_value(spec, ward, lang),
                fmt_value(spec, city, lang),
            )
        )
    return rows


def kpi_table(detail: WardDetail, pack: CityPack, lang: Lang) -> Any:
    """The ward's KPIs beside the city's, grouped by feed."""
    head = html.Tr(
        [
            html.Th(t("ward.kpi", lang)),
            html.Th(pack.ward(detail.ward).name),
            html.Th(t("ward.city", lang)),
        ]
    )
    body: list[Any] = []
    group = None
    for feed, name, ward, city in kpi_rows(detail, lang):
        if feed != group:
            body.append(html.Tr(html.Td(feed, colSpan=3), className="group"))
            group = feed
        body.append(html.Tr([html.Td(name), html.Td(ward), html.Td(city)]))
    return html.Table([html.Thead(head), html.Tbody(body)], className="kpi-table")


Figure = dict[str, Any]


def _figure(traces: list[dict[str, Any]], title: str, **layout: Any) -> Figure:
    """A plain plotly figure dict: building go.Figure objects validates every property and costs
    tens of milliseconds per chart, which the page refresh cannot afford."""
    return {
        "data": traces,
        "layout": {
            "title": {"text": title, "font": {"size": 16, "color": MUTED}},
            "paper_bgcolor": BG,
            "plot_bgcolor": BG,
            "font": {"color": INK, "size": 13},
            "margin": {"l": 50, "r": 16, "t": 40, "b": 36},
            "height": 260,
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"gridcolor": "#273145"},
            "yaxis": {"gridcolor": "#273145", "rangemode": "tozero", "automargin": True},
            **layout,
        },
    }


def series_figure(detail: WardDetail, feed: str, lang: Lang) -> Figure:
    """One feed's series over the period (hourly lines, or daily bars for 30 days)."""
    frame = detail.series[feed]
    stamps = pd.DatetimeIndex(frame.index).tz_convert("Asia/Ho_Chi_Minh")
    x = [ts.strftime("%Y-%m-%d %H:%M") for ts in stamps]
    traces = []
    for i, column in enumerate(SERIES_LINES[feed]):
        y = [None if math.isnan(v) else v for v in frame[column].astype(float).tolist()]
        trace: dict[str, Any] = {"x": x, "y": y, "name": t(f"series.{column}", lang)}
        if detail.daily:
            trace.update(type="bar", marker={"color": COLOURS[i]})
        else:
            trace.update(type="scatter", mode="lines", line={"color": COLOURS[i], "width": 2})
        traces.append(trace)
    return _figure(traces, t(f"series.{feed}", lang))


def _bar(x: list[Any], y: list[Any], colour: str, **extra: Any) -> dict[str, Any]:
    return {"type": "bar", "x": x, "y": y, "marker": {"color": colour}, **extra}


def breakdown_figures(detail: WardDetail, lang: Lang) -> dict[str, Figure]:
    """Dossiers by field (stacked by channel), payments by channel, feedback by category, AQI
    sub-index by pollutant."""
    d = detail.dossiers_by
    dossier_traces = []
    for i, channel in enumerate(sorted(set(d["channel"]))):
        part = d[d["channel"] == channel]
        dossier_traces.append(
            _bar(
                [int(v) for v in part["count"]],
                [enum_label(str(f), lang) for f in part["procedure_field"]],
                COLOURS[i % len(COLOURS)],
                name=enum_label(str(channel), lang),
                orientation="h",
            )
        )
    p = detail.payments_by
    f = detail.feedback_by
    a = detail.aqi_by
    names = {"pm25": "PM2.5", "pm10": "PM10"}
    return {
        "dossiers": _figure(
            dossier_traces, f"{t('feed.dossiers', lang)}: {t('col.field', lang)}", barmode="stack"
        ),
        "payments": _figure(
            [_bar([enum_label(str(c), lang) for c in p["channel"]],
                  [int(v) for v in p["count"]], COLOURS[0])],
            f"{t('feed.payments', lang)}: {t('col.channel', lang)}",
        ),
        "feedback": _figure(
            [_bar([enum_label(str(c), lang) for c in f["category"]],
                  [int(v) for v in f["count"]], COLOURS[2])],
            f"{t('feed.feedback', lang)}: {t('col.category', lang)}",
        ),
        "air_quality": _figure(
            [_bar([names.get(str(q), str(q).upper()) for q in a["pollutant"]],
                  [int(v) for v in a["sub_index"]], COLOURS[3])],
            f"VN_AQI: {t('col.pollutant', lang)}",
        ),
    }  # fmt: skip


def _list(headers: list[str], rows: list[list[str]], lang: Lang) -> Any:
    if not rows:
        return html.Div(t("ward.none", lang), className="ward-meta")
    return html.Div(
        html.Table(
            [
                html.Thead(html.Tr([html.Th(h) for h in headers])),
                html.Tbody([html.Tr([html.Td(c) for c in r]) for r in rows]),
            ],
            className="list-table",
        ),
        className="list-wrap",
    )


def overdue_rows(detail: WardDetail, lang: Lang) -> tuple[list[list[str]], list[list[str]]]:
    """The two overdue lists as display rows (ids, labels, dates, how late)."""
    now = detail.now
    dossiers = [
        [
            str(r["dossier_id"]),
            enum_label(str(r["procedure_field"]), lang),
            enum_label(str(r["channel"]), lang),
            fmt_date(r["received_at"], lang),
            fmt_datetime(r["due_at"], lang),
            fmt_duration((now - r["due_at"]).total_seconds(), lang),
        ]
        for r in records(detail.overdue_dossiers)
    ]
    feedback = [
        [
            str(r["report_id"]),
            enum_label(str(r["category"]), lang),
            enum_label(str(r["urgency"]), lang),
            fmt_datetime(r["submitted_at"], lang),
            fmt_datetime(r["due_at"], lang),
            fmt_duration((now - r["due_at"]).total_seconds(), lang),
        ]
        for r in records(detail.overdue_feedback)
    ]
    return dossiers, feedback


def overdue_lists(detail: WardDetail, lang: Lang) -> tuple[Any, Any]:
    dossiers, feedback = overdue_rows(detail, lang)
    d_head = [
        t(k, lang)
        for k in ("col.id", "col.field", "col.channel", "col.received", "col.due", "col.late_by")
    ]
    f_head = [
        t(k, lang)
        for k in (
            "col.id",
            "col.category",
            "col.urgency",
            "col.submitted",
            "col.due",
            "col.late_by",
        )
    ]
    return _list(d_head, dossiers, lang), _list(f_head, feedback, lang)
