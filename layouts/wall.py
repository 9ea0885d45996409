"""Callback step of the wall view (/): its layout, component ids and thin callbacks (inputs ->
one query -> one pure builder -> outputs)."""

from __future__ import annotations

import time
from typing import Any, Final

from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from ioc.queries.alerts import acknowledge
from layouts.components.map import ward_map
from layouts.components.status import ACK
from layouts.components.tiles import TARGET, TILE, TREND, VALUE, tile_grid
from layouts.data import DataSource, Unavailable
from layouts.i18n import Lang, lang_of, t
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
        State(LANG, "data"),
    )
    def refresh(_n: Any, selected: Any, _acked: Any, lang_raw: Any) -> tuple[Any, ...]:
        lang = lang_of(lang_raw)
        kpi = str((selected or {}).get("kpi") or data.config.wall.rotation[0])
        view = build_wall(data.wall(data.clock()), data.pack, data.config, kpi, lang)
        keys = [o["id"]["kpi"] for o in ctx.outputs_list[2]]
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
            view.hideout,
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
        new = rotate(state, kind, clicked, time.time() * 1000.0, data.config)
        lang = lang_of(lang_raw)
        label = t("wall.resume", lang) if new["paused_at"] is not None else t("wall.pause", lang)
        return new, label

    @app.callback(
        Output(URL, "pathname"),
        Input(GEOJSON, "clickData"),
        prevent_initial_call=True,
    )
    def open_ward(feature: Any) -> Any:
        code = ((feature or {}).get("properties") or {}).get("ward_code")
        if not code or code not in data.pack:
            return no_update
        return f"/ward/{code}"

    @app.callback(
        Output(ACKED, "data"),
        Input({"type": ACK, "key": ALL}, "n_clicks"),
        State(ACKED, "data"),
        prevent_initial_call=True,
    )
    def ack(clicks: Any, count: Any) -> Any:
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not ctx.triggered[0]["value"]:
            return no_update  # the list was re-rendered, nobody clicked
        key = str(trigger.get("key"))
        done = data.read(lambda conn: acknowledge(conn, key, "wall"))
        if isinstance(done, Unavailable):
            return no_update
        return int(count or 0) + 1
