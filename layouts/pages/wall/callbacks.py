"""Callbacks of the wall view: refresh, KPI rotation, opening a ward, acknowledging an alert."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import Forbidden

from ioc.core.queries.alerts import acknowledge
from layouts.components.status import ACK
from layouts.components.tiles import TARGET, TILE, TREND, VALUE
from layouts.data import DataSource, Unavailable
from layouts.i18n import lang_of, t
from layouts.pages.timeline.ids import AS_OF
from layouts.pages.timeline.view import parse_as_of
from layouts.pages.wall.ids import (
    ACKED,
    ALERTS,
    BANNER,
    GEOJSON,
    HEALTH,
    LEGEND,
    PAUSE,
    REFRESH,
    ROTATE,
    SELECTED,
)
from layouts.pages.wall.inputs import (
    ack_target,
    click_count,
    clicked_ward,
    rotation_state,
    selected_kpi,
    tile_keys,
)
from layouts.pages.wall.view import build_wall, refresh_outputs, rotate
from layouts.registry import Registered, callback, registered
from layouts.security import audit_event, principal
from layouts.shell.ids import LANG, URL

REFRESH_DEPS: Final = (
    Output(GEOJSON, "hideout"),
    Output(LEGEND, "children"),
    Output({"type": VALUE, "kpi": ALL}, "children"),
    Output({"type": TREND, "kpi": ALL}, "children"),
    Output({"type": TARGET, "kpi": ALL}, "children"),
    Output({"type": TILE, "kpi": ALL}, "className"),
    Output(HEALTH, "children"),
    Output(ALERTS, "children"),
    Output(BANNER, "children"),
    Output(BANNER, "className"),
    Input(REFRESH, "n_intervals"),
    Input(SELECTED, "data"),
    Input(ACKED, "data"),
    Input(AS_OF, "data"),
    State(LANG, "data"),
)
ROTATION_DEPS: Final = (
    Output(SELECTED, "data"),
    Output(PAUSE, "children"),
    Input(ROTATE, "n_intervals"),
    Input({"type": TILE, "kpi": ALL}, "n_clicks"),
    Input(PAUSE, "n_clicks"),
    State(SELECTED, "data"),
    State(LANG, "data"),
)
ACK_DEPS: Final = (
    Output(ACKED, "data"),
    Input({"type": ACK, "kind": ALL, "subject": ALL}, "n_clicks"),
    State(ACKED, "data"),
    State(AS_OF, "data"),
)


def register(app: Dash, data: DataSource) -> Registered:
    """The wall's callbacks on this app and data source: the wall's permission for all but
    acknowledging, which needs its own."""
    return registered(
        app,
        {
            _refresh(app, data): "wall",
            _rotation(app, data): "wall",
            _open_ward(app, data): "wall",
            _ack(app, data): "ack",
        },
    )


def _refresh(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *REFRESH_DEPS)
    def refresh(
        _n: Any, selected: Any, _acked: Any, as_of_raw: Any, lang_raw: Any
    ) -> tuple[Any, ...]:
        who = principal()
        scope = who.scope(data.wards)
        if not scope:
            raise Forbidden()
        now = data.clock()
        as_of = parse_as_of(as_of_raw, now)
        if as_of is not None and set(ctx.triggered_prop_ids) == {f"{REFRESH}.n_intervals"}:
            # The past does not change by the second. Only a tick alone is skipped: the
            # renderer merges a KPI change that arrives while a tick is in flight into one
            # request, which must be answered.
            raise PreventUpdate
        kpi = selected_kpi(selected, data.config.wall.rotation[0])
        tiles = tile_keys(ctx.outputs_list[2])
        snapshot = data.wall(now, scope, as_of)
        view = build_wall(snapshot, data.pack, data.config, kpi, lang_of(lang_raw))
        return refresh_outputs(view, tiles, who)

    return refresh


def _rotation(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *ROTATION_DEPS, prevent_initial_call=True)
    def rotation(_tick: Any, _tiles: Any, _pause: Any, state: Any, lang_raw: Any) -> Any:
        trigger = ctx.triggered_id
        clicked = None
        kind = "tick"
        if isinstance(trigger, dict):
            if not ctx.triggered[0]["value"]:
                return no_update, no_update  # a tile re-rendered, nobody clicked
            kind, clicked = "tile", str(trigger.get("kpi"))
        elif trigger == PAUSE:
            kind = "pause"
        current = rotation_state(state, data.config.wall.rotation[0])
        new = rotate(current, kind, clicked, time.time() * 1000.0, data.config)
        lang = lang_of(lang_raw)
        label = t("wall.resume", lang) if new["paused_at"] is not None else t("wall.pause", lang)
        return new, label

    return rotation


def _open_ward(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, Output(URL, "pathname"), Input(GEOJSON, "clickData"), prevent_initial_call=True)
    def open_ward(feature: Any) -> Any:
        who = principal()
        code = clicked_ward(feature, data.pack.codes)
        if code is None:
            return no_update
        if not who.can("ward") or not who.sees(code):
            return no_update  # operators and displays stay on the wall
        return f"/ward/{code}"

    return open_ward


def _ack(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *ACK_DEPS, prevent_initial_call=True)
    def ack(_clicks: Any, count: Any, as_of_raw: Any) -> Any:
        button = ctx.triggered_id
        if not isinstance(button, dict) or not ctx.triggered[0]["value"]:
            return no_update  # the list was re-rendered, nobody clicked
        if parse_as_of(as_of_raw, data.clock()) is not None:
            raise PreventUpdate  # time travel shows the past, which cannot be acknowledged
        who = principal()
        alert = ack_target(button, who, data.pack.codes)
        if alert is None:
            named = {k: str(button.get(k))[:40] for k in ("kind", "subject")}
            audit_event(app.server, "ack", "refused", named)
            raise Forbidden()
        done = data.read(lambda conn: acknowledge(conn, alert, who.name))
        if isinstance(done, Unavailable):
            return no_update
        audit_event(app.server, "ack", "ok", {"key": alert.key})
        return click_count(count) + 1

    return ack
