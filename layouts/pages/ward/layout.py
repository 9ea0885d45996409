"""Layout of the ward page: its head, period and export controls, and the cards to fill."""

from __future__ import annotations

from typing import Any, Final

from dash import dcc, html

from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.ward import PERIOD_HOURS
from layouts.data import DataSource
from layouts.i18n import Lang, fmt_number, t
from layouts.pages.ward.ids import (
    BREAKDOWN,
    CODE,
    DOWNLOAD,
    EXPORT,
    KPIS,
    OVERDUE_DOSSIERS,
    OVERDUE_FEEDBACK,
    PERIOD,
    REFRESH,
    SERIES,
    STATUS,
)

REFRESH_MS: Final = 30_000
GRAPH_CONFIG: Final[Any] = {"displayModeBar": False}


def _graph(graph_id: str) -> Any:
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": "260px"})


def _card(title: str, *children: Any, wide: bool = False) -> Any:
    return html.Div([html.H2(title), *children], className="card wide" if wide else "card")


def _head(data: DataSource, code: str, lang: Lang) -> Any:
    ward = data.pack.ward(code)
    successors = ", ".join(u.name for u in data.pack.successors(code))
    meta = (
        f"{code} · {t('ward.population', lang)} {fmt_number(ward.population, lang)}"
        f" · {fmt_number(ward.area_km2, lang, 1)} km² · 2025 → {successors}"
    )
    return html.Div(
        [
            dcc.Link(t("ward.back", lang), href="/"),
            html.H1(ward.name),
            html.Span(meta, className="ward-meta"),
        ],
        className="ward-head",
    )


def _controls(lang: Lang) -> Any:
    periods = [{"label": t(f"ward.p{p}", lang), "value": p} for p in PERIOD_HOURS]
    return html.Div(
        [
            html.Span(t("ward.period", lang)),
            dcc.RadioItems(periods, "24h", id=PERIOD, inline=True),
            html.Button(t("ward.export", lang), id=EXPORT, n_clicks=0, className="export-button"),
            html.Span(id=STATUS, className="ward-meta"),
        ],
        className="ward-controls",
    )


def _cards(lang: Lang) -> Any:
    breakdowns = t("ward.breakdowns", lang)
    return html.Div(
        [
            _card(t("ward.kpi", lang), html.Div(id=KPIS)),
            _card(breakdowns, _graph(BREAKDOWN["air_quality"]), _graph(BREAKDOWN["feedback"])),
            _card(
                t("ward.series", lang),
                html.Div([_graph(SERIES[f]) for f in FEED_NAMES], className="ward-grid"),
                wide=True,
            ),
            _card(breakdowns, _graph(BREAKDOWN["dossiers"])),
            _card(breakdowns, _graph(BREAKDOWN["payments"])),
            _card(t("ward.overdue_dossiers", lang), html.Div(id=OVERDUE_DOSSIERS)),
            _card(t("ward.overdue_feedback", lang), html.Div(id=OVERDUE_FEEDBACK)),
        ],
        className="ward-grid",
    )


def layout(data: DataSource, code: str, lang: Lang) -> Any:
    """The page for one ward; an unknown code says so instead of failing."""
    if code not in data.pack:
        return html.Div(
            [dcc.Link(t("ward.back", lang), href="/"), html.H1(t("ward.unknown", lang, code=code))],
            className="ward-page",
        )
    return html.Div(
        [
            _head(data, code, lang),
            _controls(lang),
            _cards(lang),
            dcc.Store(id=CODE, data=code),
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Download(id=DOWNLOAD),
        ],
        className="ward-page",
    )
