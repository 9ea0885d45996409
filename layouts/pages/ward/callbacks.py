"""Callbacks of the ward page: its refresh and CSV export, ward and period checked on the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from dash import Dash, Input, Output, State, no_update
from werkzeug.exceptions import BadRequest, Forbidden

from ioc.core.auth.principals import Principal
from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.ward import PERIOD_HOURS
from layouts.data import DataSource, Unavailable
from layouts.i18n import fmt_time, lang_of, t
from layouts.pages.timeline.ids import AS_OF
from layouts.pages.timeline.view import parse_as_of
from layouts.pages.ward.export import export_csv, export_name
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
from layouts.pages.ward.view import (
    breakdown_figures,
    kpi_table,
    overdue_lists,
    series_figure,
    status_line,
)
from layouts.registry import Registered, callback, registered
from layouts.security import audit_event, principal
from layouts.shell.ids import LANG

OUTPUTS: Final = (
    Output(KPIS, "children"),
    *[Output(SERIES[f], "figure") for f in FEED_NAMES],
    *[Output(BREAKDOWN[f], "figure") for f in FEED_NAMES],
    Output(OVERDUE_DOSSIERS, "children"),
    Output(OVERDUE_FEEDBACK, "children"),
    Output(STATUS, "children"),
)
REFRESH_INPUTS: Final = (
    Input(PERIOD, "value"),
    Input(REFRESH, "n_intervals"),
    Input(AS_OF, "data"),
    State(CODE, "data"),
    State(LANG, "data"),
)
EXPORT_DEPS: Final = (
    Output(DOWNLOAD, "data"),
    Input(EXPORT, "n_clicks"),
    State(PERIOD, "value"),
    State(CODE, "data"),
    State(LANG, "data"),
    State(AS_OF, "data"),
)


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


def register(app: Dash, data: DataSource) -> Registered:
    """The ward page's callbacks on this app and data source: the page needs the ward
    permission, its download the export one."""
    return registered(app, {_refresh(app, data): "ward", _export(app, data): "export"})


def _refresh(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *OUTPUTS, *REFRESH_INPUTS)
    def refresh(period: Any, _n: Any, as_of_raw: Any, code: Any, lang_raw: Any) -> tuple[Any, ...]:
        who, code, period = checked(data, code, period)
        lang = lang_of(lang_raw)
        now = data.clock()
        as_of = parse_as_of(as_of_raw, now)
        detail = data.ward(code, period, now, who.scope(data.wards), as_of)
        if isinstance(detail, Unavailable):
            status = t("wall.unavailable", lang, time=fmt_time(detail.since))
            return (*([no_update] * (len(OUTPUTS) - 1)), status)
        breakdowns = breakdown_figures(detail, lang)
        dossiers, feedback = overdue_lists(detail, lang)
        return (
            kpi_table(detail, data.pack, lang),
            *[series_figure(detail, f, lang) for f in FEED_NAMES],
            *[breakdowns[f] for f in FEED_NAMES],
            dossiers,
            feedback,
            status_line(as_of, now, lang),
        )

    return refresh


def _export(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *EXPORT_DEPS, prevent_initial_call=True)
    def export(clicks: Any, period: Any, code: Any, lang_raw: Any, as_of_raw: Any) -> Any:
        if not clicks:
            return no_update
        try:
            who, code, period = checked(data, code, period)
        except Forbidden:
            audit_event(app.server, "export", "refused", {"ward": str(code)[:20]})
            raise
        now = data.clock()
        as_of = parse_as_of(as_of_raw, now)
        detail = data.ward(code, period, now, who.scope(data.wards), as_of)
        if isinstance(detail, Unavailable):
            return no_update
        moment = "live" if as_of is None else as_of.isoformat()
        audit_event(app.server, "export", "ok", {"ward": code, "period": period, "as_of": moment})
        name = export_name(code, period, detail.now, as_of is not None)
        csv = export_csv(detail, lang_of(lang_raw))
        return {"content": csv, "filename": name, "type": "text/csv"}

    return export
