"""Callback step of the ward page (/ward/<code>): layout, component ids and thin callbacks
(inputs -> one query -> one pure builder -> outputs), and the CSV export. The ward and period
come from the request body, so both are checked against the caller's scope on the server."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from dash import Dash, Input, Output, State, dcc, html, no_update
from werkzeug.exceptions import BadRequest, Forbidden

from ioc.core.auth.principals import Principal
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.ward import PERIOD_HOURS
from layouts.components.timeline import AS_OF
from layouts.data import DataSource, Unavailable
from layouts.i18n import Lang, enum_label, fmt_number, fmt_time, lang_of, t
from layouts.security import audit_event, principal
from layouts.timeline_view import fmt_moment, parse_as_of
from layouts.ward_view import breakdown_figures, export_csv, kpi_table, overdue_lists, series_figure

CODE: Final = "ward-code"
PERIOD: Final = "ward-period"
REFRESH: Final = "ward-refresh"
KPIS: Final = "ward-kpis"
SERIES: Final = {f: f"ward-series-{f}" for f in FEED_NAMES}
BREAKDOWN: Final = {f: f"ward-breakdown-{f}" for f in FEED_NAMES}
OVERDUE_DOSSIERS: Final = "ward-overdue-dossiers"
OVERDUE_FEEDBACK: Final = "ward-overdue-feedback"
STATUS: Final = "ward-status"
EXPORT: Final = "ward-export"
DOWNLOAD: Final = "ward-download"
LANG: Final = "lang"
REFRESH_MS: Final = 30_000
GRAPH_CONFIG: Final[Any] = {"displayModeBar": False}


def checked(data: DataSource, code: object, period: object) -> tuple[Principal, str, str]:
    """(caller, ward, period) when the caller may see that ward; Forbidden or BadRequest else."""
    who = principal()
    if not isinstance(code, str) or code not in data.pack or not who.sees(code):
        raise Forbidden()
    if period is None:
        period = "24h"
    if not isinstance(period, str) or period not in PERIOD_HOURS:
        raise BadRequest("unknown period")
    return who, code, period


def status_text(as_of: datetime | None, now: datetime, lang: Lang) -> str:
    """The page's "as of" line: the refresh time live, the viewed time when time-travelling."""
    if as_of is None:
        return t("wall.as_of", lang, time=fmt_time(now, seconds=True))
    return t("tt.viewing", lang, time=fmt_moment(as_of))


def export_name(code: str, period: str, at: datetime, past: bool) -> str:
    """ioc-<ward>-<period>-<yyyymmdd-HHMM, Vietnam time>[-asof].csv"""
    stamp = at.astimezone(VN_TZ).strftime("%Y%m%d-%H%M")
    return f"ioc-{code}-{period}-{stamp}{'-asof' if past else ''}.csv"


def _graph(graph_id: str) -> Any:
    return dcc.Graph(id=graph_id, config=GRAPH_CONFIG, style={"height": "260px"})


def _card(title: str, *children: Any, wide: bool = False) -> Any:
    return html.Div([html.H2(title), *children], className="card wide" if wide else "card")


def layout(data: DataSource, code: str, lang: Lang) -> Any:
    """The page for one ward; an unknown code says so instead of failing."""
    if code not in data.pack:
        return html.Div(
            [dcc.Link(t("ward.back", lang), href="/"), html.H1(t("ward.unknown", lang, code=code))],
            className="ward-page",
        )
    ward = data.pack.ward(code)
    successors = ", ".join(u.name for u in data.pack.successors(code))
    meta = (
        f"{code} · {t('ward.population', lang)} {fmt_number(ward.population, lang)}"
        f" · {fmt_number(ward.area_km2, lang, 1)} km² · 2025 → {successors}"
    )
    periods = [{"label": t(f"ward.p{p}", lang), "value": p} for p in PERIOD_HOURS]
    return html.Div(
        [
            html.Div(
                [
                    dcc.Link(t("ward.back", lang), href="/"),
                    html.H1(ward.name),
                    html.Span(meta, className="ward-meta"),
                ],
                className="ward-head",
            ),
            html.Div(
                [
                    html.Span(t("ward.period", lang)),
                    dcc.RadioItems(periods, "24h", id=PERIOD, inline=True),
                    html.Button(
                        t("ward.export", lang), id=EXPORT, n_clicks=0, className="export-button"
                    ),
                    html.Span(id=STATUS, className="ward-meta"),
                ],
                className="ward-controls",
            ),
            html.Div(
                [
                    _card(t("ward.kpi", lang), html.Div(id=KPIS)),
                    _card(
                        t("ward.breakdowns", lang),
                        _graph(BREAKDOWN["air_quality"]),
                        _graph(BREAKDOWN["feedback"]),
                    ),
                    _card(
                        t("ward.series", lang),
                        html.Div([_graph(SERIES[f]) for f in FEED_NAMES], className="ward-grid"),
                        wide=True,
                    ),
                    _card(t("ward.breakdowns", lang), _graph(BREAKDOWN["dossiers"])),
                    _card(t("ward.breakdowns", lang), _graph(BREAKDOWN["payments"])),
                    _card(t("ward.overdue_dossiers", lang), html.Div(id=OVERDUE_DOSSIERS)),
                    _card(t("ward.overdue_feedback", lang), html.Div(id=OVERDUE_FEEDBACK)),
                ],
                className="ward-grid",
            ),
            dcc.Store(id=CODE, data=code),
            dcc.Interval(id=REFRESH, interval=REFRESH_MS),
            dcc.Download(id=DOWNLOAD),
        ],
        className="ward-page",
    )


def register(app: Dash, data: DataSource) -> None:
    """The ward page's callbacks, bound to this app and its data source."""
    outputs = [
        Output(KPIS, "children"),
        *[Output(SERIES[f], "figure") for f in FEED_NAMES],
        *[Output(BREAKDOWN[f], "figure") for f in FEED_NAMES],
        Output(OVERDUE_DOSSIERS, "children"),
        Output(OVERDUE_FEEDBACK, "children"),
        Output(STATUS, "children"),
    ]

    @app.callback(
        *outputs,
        Input(PERIOD, "value"),
        Input(REFRESH, "n_intervals"),
        Input(AS_OF, "data"),
        State(CODE, "data"),
        State(LANG, "data"),
    )
    def refresh(period: Any, _n: Any, as_of_raw: Any, code: Any, lang_raw: Any) -> tuple[Any, ...]:
        who, code, period = checked(data, code, period)
        lang = lang_of(lang_raw)
        now = data.clock()
        as_of = parse_as_of(as_of_raw, now)
        detail = data.ward(code, period, now, who.scope(data.wards), as_of)
        if isinstance(detail, Unavailable):
            status = t("wall.unavailable", lang, time=fmt_time(detail.since))
            return (*([no_update] * (len(outputs) - 1)), status)
        breakdowns = breakdown_figures(detail, lang)
        dossiers, feedback = overdue_lists(detail, lang)
        return (
            kpi_table(detail, data.pack, lang),
            *[series_figure(detail, f, lang) for f in FEED_NAMES],
            *[breakdowns[f] for f in FEED_NAMES],
            dossiers,
            feedback,
            html.Span(status_text(as_of, now, lang), className="travel-status")
            if as_of is not None
            else status_text(as_of, now, lang),
        )

    @app.callback(
        Output(DOWNLOAD, "data"),
        Input(EXPORT, "n_clicks"),
        State(PERIOD, "value"),
        State(CODE, "data"),
        State(LANG, "data"),
        State(AS_OF, "data"),
        prevent_initial_call=True,
    )
    def export(clicks: Any, period: Any, code: Any, lang_raw: Any, as_of_raw: Any) -> Any:
        if not clicks:
            return no_update
        try:
            who, code, period = checked(data, code, period)
        except Forbidden:
            audit_event(app.server, "export", "refused", {"ward": str(code)[:20]})
            raise
        lang = lang_of(lang_raw)
        now = data.clock()
        as_of = parse_as_of(as_of_raw, now)
        detail = data.ward(code, period, now, who.scope(data.wards), as_of)
        if isinstance(detail, Unavailable):
            return no_update
        audit_event(
            app.server,
            "export",
            "ok",
            {
                "ward": code,
                "period": period,
                "as_of": "live" if as_of is None else as_of.isoformat(),
            },
        )
        name = export_name(code, period, detail.now, as_of is not None)
        return {"content": export_csv(detail, lang), "filename": name, "type": "text/csv"}


__all__ = ["enum_label", "layout", "register"]
