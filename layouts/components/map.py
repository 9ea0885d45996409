"""Map step: the wards' Leaflet map (geometry sent once), and each refresh's colours and legend."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace, arrow_function

from ioc.core.citypack import CityPack
from layouts.i18n import Lang, t
from layouts.kpis import STALE, KpiSpec, breaks_for, colour_of, legend_entries

# The style function ships in layouts/assets/ioc_map.js (served with the app, nothing written
# at import time); dash-extensions' Namespace names it for dash-leaflet.
STYLE: Final = Namespace("dashExtensions", "ioc")("wardStyle")
HOVER: Final = arrow_function({"weight": 4, "color": "#ffffff"})


def ward_map(
    pack: CityPack,
    map_id: str,
    geojson_id: str,
    tiles_url: str,
    hideout: Mapping[str, Any],
    *,
    shapes: bool = True,
) -> Any:
    """The map with every ward's polygon (none without `shapes`); no tile layer unless a URL is
    configured, so an offline wall shows the wards on a plain background without broken-tile
    noise."""
    west, south, east, north = pack.bounds
    layers: list[Any] = []
    if tiles_url:
        layers.append(dl.TileLayer(url=tiles_url, maxZoom=18))
    layers.append(
        dl.GeoJSON(
            id=geojson_id,
            data=pack.geojson() if shapes else {"type": "FeatureCollection", "features": []},
            style=STYLE,
            hoverStyle=HOVER,
            hideout=dict(hideout),
            zoomToBounds=False,
            zoomToBoundsOnClick=False,
        )
    )
    return dl.Map(
        layers,
        id=map_id,
        bounds=[[south, west], [north, east]],
        # dash-leaflet 1.1 reads `center` when it reports the view back, even with bounds; a
        # `zoom` prop would override the fit to bounds, so none is given.
        center=[(south + north) / 2.0, (west + east) / 2.0],
        zoomSnap=0.25,
        attributionControl=False,
        className="ioc-map",
        style={"width": "100%", "height": "100%"},
    )


def ward_values(kpis: Any, kpi: str, wards: list[str]) -> dict[str, float]:
    """Each ward's value of a KPI from a KPI frame (NaN where missing)."""
    column = kpis[kpi] if kpi in kpis.columns else None
    out: dict[str, float] = {}
    for code in wards:
        raw = None if column is None or code not in column.index else column.loc[code]
        try:
            out[code] = float(raw) if raw is not None else math.nan
        except (TypeError, ValueError):
            out[code] = math.nan
    return out


def map_hideout(
    spec: KpiSpec, values: Mapping[str, float], stale: bool, selected: str | None = None
) -> dict[str, Any]:
    """What the style function needs: one fill colour per ward (grey when the KPI's feed is
    stale, so old numbers never look current), the stale flag and the highlighted ward."""
    breaks = breaks_for(spec, list(values.values()))
    colours = {code: STALE if stale else colour_of(spec, v, breaks) for code, v in values.items()}
    return {"colours": colours, "stale": stale, "selected": selected, "kpi": spec.key}


def legend(spec: KpiSpec, values: Mapping[str, float], stale: bool, lang: Lang) -> list[Any]:
    """The legend rows (colour swatch and label) for the KPI on the map."""
    breaks = breaks_for(spec, list(values.values()))
    rows = [
        html.Div(
            [html.Span(className="swatch", style={"background": colour}), html.Span(label)],
            className="legend-row",
        )
        for colour, label in legend_entries(spec, breaks, lang)
    ]
    title = html.Div(t(f"kpi.{spec.key}", lang), className="legend-title")
    note = [html.Div(t("wall.stale", lang), className="legend-stale")] if stale else []
    return [title, *note, *rows]
