"""Layout of the wall view: map and legend, tile grid, health strip, alerts, timers and stores."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from layouts.components.map import ward_map
from layouts.components.tiles import tile_grid
from layouts.data import DataSource
from layouts.i18n import Lang, t
from layouts.pages.wall.ids import (
    ACKED,
    ALERTS,
    BANNER,
    GEOJSON,
    HEALTH,
    LEGEND,
    MAP,
    PAUSE,
    REFRESH,
    ROTATE,
    SELECTED,
)


def layout(data: DataSource, tiles_url: str, lang: Lang, *, shapes: bool = True) -> Any:
    """The wall's components; texts are filled by the first refresh, fired on load. Without
    `shapes` the map has no ward geometry (the validation layout only needs ids)."""
    cfg = data.config.wall
    first = cfg.rotation[0]
    hideout = {"colours": {}, "stale": False, "selected": None}
    map_panel = html.Div(
        [
            ward_map(data.pack, MAP, GEOJSON, tiles_url, hideout, shapes=shapes),
            html.Div(id=LEGEND, className="legend"),
            html.Button(t("wall.pause", lang), id=PAUSE, n_clicks=0, className="pause"),
        ],
        className="map-panel",
    )
    alerts = html.Div(
        [
            html.Div(t("wall.alerts", lang), className="alerts-title"),
            html.Div(id=ALERTS, className="alerts"),
        ],
        className="alerts-bar",
    )
    return html.Div(
        [
            html.Div(id=HEALTH, className="health-strip"),
            html.Div([map_panel, tile_grid(lang)], className="wall-main"),
            alerts,
            html.Div(id=BANNER, className="banner"),
            dcc.Interval(id=REFRESH, interval=cfg.refresh_ms),
            dcc.Interval(id=ROTATE, interval=int(cfg.rotate_seconds * 1000)),
            dcc.Store(id=SELECTED, data={"kpi": first, "paused_at": None}),
            dcc.Store(id=ACKED, data=0),
        ],
        className="wall",
    )
