"""Callback step of the wall view (/): its layout, component ids and thin callbacks (inputs ->
one query -> one pure builder -> outputs). Every input is checked (it is whatever the request
body says), and a ward-scoped caller gets its wards only - map, tiles and alerts alike."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Final

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import BadRequest, Forbidden

from ioc.core.auth.principals import Principal
from ioc.core.feeds import FEED_NAMES
from ioc.core.queries.alerts import acknowledge
from layouts.components.map import ward_map
from layouts.components.status import ACK
from layouts.components.tiles import TARGET, TILE, TREND, VALUE, tile_grid
from layouts.components.timeline import AS_OF
from layouts.data import DataSource, Unavailable
from layouts.i18n import Lang, lang_of, t
from layouts.kpis import BY_KEY
from layouts.security import audit_event, principal
from layouts.timeline_view import parse_as_of
from layouts.wall_view import build_wall, rotate

MAP: Final = "wall-map"
GEOJSON: Final = "wall-geojson"
LEGEND: Final = "wall-legend"
HEALTH: Final = "wall-health"
ALERTS: Final = "wall-alerts"
BANNER: Final = "wall-banner"
REFRESH: Final = "wall-refresh"
ROTATE: Final = "wall-rotate"
SELECTED: Final = "wall-selected"
PAUSE: Final = "wall-pause"
ACKED: Final = "wall-acked"
URL: Final = "url"  # the app's dcc.Location
LANG: Final = "lang"  # the app's language store
ACK_KEY_RE: Final = re.compile(r"^(aqi|overdue_backlog):([0-9]{5})$")


def ack_allowed(key: object, who: Principal) -> bool:
    """Whether `who` may acknowledge the alert `key` (a well-formed key in its scope)."""
    if not isinstance(key, str):
        return False
    if match := ACK_KEY_RE.match(key):
        return who.sees(match.group(2))
    return key == "dead_letters:city" or key in {f"feed_stalled:{f}" for f in FEED_NAMES}


def selected_kpi(selected: object, default: str) -> str:
    """The KPI a (possibly forged) selection store names, or the default."""
    kpi = selected.get("kpi") if isinstance(selected, Mapping) else None
    return kpi if isinstance(kpi, str) and kpi in BY_KEY else default


def rotation_state(state: object, default: str) -> dict[str, Any]:
    """The rotation store with a known KPI and a numeric (or no) pause time."""
    paused = state.get("paused_at") if isinstance(state, Mapping) else None
    at: float | None = None
    if isinstance(paused, int | float) and not isinstance(paused, bool) and paused == paused:
        at = float(paused)
    return {"kpi": selected_kpi(state, default), "paused_at": at}


def tile_keys(outputs: Any) -> list[str]:
    """The KPI of each tile output the request lists; BadRequest for anything else."""
    try:
        keys = [o["id"]["kpi"] for o in outputs]
    except (KeyError, TypeError, IndexError):
        raise BadRequest("malformed tile outputs") from None
    if not all(isinstance(k, str) and k in BY_KEY for k in keys):
        raise BadRequest("unknown tile")
    return keys


def layout(data: DataSource, tiles_url: str, lang: Lang) -> Any:
    """The wall's components; texts are filled by the first refresh, fired on load."""
    cfg = data.config.wall
    first = cfg.rotation[0]
    return html.Div(
        [
            html.Div(id=HEALTH, className="health-strip"),
            html.Div(
                [
                    html.Div(
                        [
                            ward_map(
                                data.pack,
                                MAP,
                                GEOJSON,
                                tiles_url,
                                {"colours": {}, "stale": False, "selected": None},
                            ),
                            html.Div(id=LEGEND, className="legend"),
                            html.Button(
                                t("wall.pause", lang), id=PAUSE, n_clicks=0, className="pause"
                            ),
                        ],
                        className="map-panel",
                    ),
                    tile_grid(lang),
                ],
                className="wall-main",
            ),
            html.Div(
                [
                    html.Div(t("wall.alerts", lang), className="alerts-title"),
                    html.Div(id=ALERTS, className="alerts"),
                ],
                className="alerts-bar",
            ),
            html.Div(id=BANNER, className="banner"),
            dcc.Interval(id=REFRESH, interval=cfg.refresh_ms),
            dcc.Interval(id=ROTATE, interval=int(cfg.rotate_seconds * 1000)),
            dcc.Store(id=SELECTED, data={"kpi": first, "paused_at": None}),
            dcc.Store(id=ACKED, data=0),
        ],
        className="wall",
    )


def register(app: Dash, data: DataSource) -> None:
    """The wall's callbacks, bound to this app and its data source."""

    @app.callback(
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
        lang = lang_of(lang_raw)
        kpi = selected_kpi(selected, data.config.wall.rotation[0])
        keys = tile_keys(ctx.outputs_list[2])
        view = build_wall(data.wall(now, scope, as_of), data.pack, data.config, kpi, lang)
        hideout = view.hideout
        if not who.city_wide:
            colours = {k: v for k, v in hideout["colours"].items() if who.sees(k)}
            hideout = {**hideout, "colours": colours}
        values: list[Any]
        trends: list[Any]
        targets: list[Any]
        if view.tiles is None:
            values = trends = targets = [no_update] * len(keys)
            classes = ["tile stale"] * len(keys)
        else:
            tiles = view.tiles
            values = [tiles[k].value for k in keys]
            trends = [tiles[k].trend for k in keys]
            targets = [tiles[k].target for k in keys]
            classes = [tiles[k].class_name for k in keys]
        return (
            hideout,
            view.legend,
            values,
            trends,
            targets,
            classes,
            no_update if view.health is None else view.health,
            no_update if view.alerts is None else view.alerts,
            view.banner,
            view.banner_class,
        )

    @app.callback(
        Output(SELECTED, "data"),
        Output(PAUSE, "children"),
        Input(ROTATE, "n_intervals"),
        Input({"type": TILE, "kpi": ALL}, "n_clicks"),
        Input(PAUSE, "n_clicks"),
        State(SELECTED, "data"),
        State(LANG, "data"),
        prevent_initial_call=True,
    )
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
        default = data.config.wall.rotation[0]
        current = rotation_state(state, default)
        new = rotate(current, kind, clicked, time.time() * 1000.0, data.config)
        lang = lang_of(lang_raw)
        label = t("wall.resume", lang) if new["paused_at"] is not None else t("wall.pause", lang)
        return new, label

    @app.callback(
        Output(URL, "pathname"),
        Input(GEOJSON, "clickData"),
        prevent_initial_call=True,
    )
    def open_ward(feature: Any) -> Any:
        who = principal()
        props = feature.get("properties") if isinstance(feature, Mapping) else None
        code = props.get("ward_code") if isinstance(props, Mapping) else None
        if not isinstance(code, str) or code not in data.pack:
            return no_update
        if not who.can("ward") or not who.sees(code):
            return no_update  # operators and displays stay on the wall
        return f"/ward/{code}"

    @app.callback(
        Output(ACKED, "data"),
        Input({"type": ACK, "key": ALL}, "n_clicks"),
        State(ACKED, "data"),
        State(AS_OF, "data"),
        prevent_initial_call=True,
    )
    def ack(clicks: Any, count: Any, as_of_raw: Any) -> Any:
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not ctx.triggered[0]["value"]:
            return no_update  # the list was re-rendered, nobody clicked
        if parse_as_of(as_of_raw, data.clock()) is not None:
            raise PreventUpdate  # time travel shows the past, which cannot be acknowledged
        who = principal()
        key = trigger.get("key")
        if not ack_allowed(key, who):
            audit_event(app.server, "ack", "refused", {"key": str(key)[:80]})
            raise Forbidden()
        done = data.read(lambda conn: acknowledge(conn, str(key), who.name))
        if isinstance(done, Unavailable):
            return no_update
        audit_event(app.server, "ack", "ok", {"key": key})
        n = count if isinstance(count, int) and not isinstance(count, bool) else 0
        return min(max(n, 0), 1_000_000) + 1
