"""Pure builders of the wall: a snapshot (or an outage) to a refresh's outputs; KPI rotation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dash import no_update

from ioc.core.auth.principals import Principal
from ioc.core.citypack import CityPack
from ioc.core.queries.snapshot import WallSnapshot
from ioc.core.queries.window import floor_hour
from ioc.core.targets import DashboardConfig
from layouts.components.map import legend, map_hideout, ward_values
from layouts.components.status import alert_list, health_strip, stale_feeds, travel_note
from layouts.components.tiles import TileText, tile_texts
from layouts.data import Unavailable
from layouts.i18n import Lang, fmt_time, t
from layouts.kpis import BY_KEY, SPECS, STALE
from layouts.pages.timeline.view import fmt_moment


@dataclass(frozen=True)
class WallView:
    """Everything one wall refresh outputs."""

    hideout: dict[str, Any]
    legend: list[Any]
    tiles: Mapping[str, TileText] | None  # None: keep the texts shown, grey them
    health: list[Any] | None
    alerts: list[Any] | None
    banner: str
    banner_class: str


def _outage(since: Unavailable, wards: list[str], kpi: str, lang: Lang) -> WallView:
    spec = BY_KEY.get(kpi, SPECS[0])
    values = dict.fromkeys(wards, float("nan"))
    hideout = map_hideout(spec, values, stale=True)
    hideout["colours"] = dict.fromkeys(wards, STALE)
    return WallView(
        hideout=hideout,
        legend=legend(spec, values, True, lang),
        tiles=None,
        health=None,
        alerts=None,
        banner=t("wall.unavailable", lang, time=fmt_time(since.since)),
        banner_class="banner is-down",
    )


def build_wall(
    snapshot: WallSnapshot | Unavailable,
    pack: CityPack,
    config: DashboardConfig,
    kpi: str,
    lang: Lang,
) -> WallView:
    """The wall's outputs; an outage greys the map and says since when data is missing. A
    snapshot of the past (time travel) shows no feed health, so nothing is greyed as stale,
    and its alerts cannot be acknowledged."""
    wards = [w.code for w in pack.wards]
    if isinstance(snapshot, Unavailable):
        return _outage(snapshot, wards, kpi, lang)
    spec = BY_KEY.get(kpi, SPECS[0])
    live = snapshot.live
    stale = stale_feeds(snapshot.health, config.stale_after_s) if live else frozenset()
    values = ward_values(snapshot.kpis, spec.key, wards)
    is_stale = spec.feed in stale
    return WallView(
        hideout=map_hideout(spec, values, is_stale),
        legend=legend(spec, values, is_stale, lang),
        tiles=tile_texts(snapshot.kpis, snapshot.yesterday, config, stale, spec.key, lang),
        health=(
            health_strip(snapshot.health, stale, lang)
            if live
            else travel_note(fmt_time(floor_hour(snapshot.now)), lang)
        ),
        alerts=alert_list(snapshot.alerts, pack, lang, can_ack=live),
        banner=(
            t("wall.as_of", lang, time=fmt_time(snapshot.now, seconds=True))
            if live
            else t("tt.viewing", lang, time=fmt_moment(snapshot.now))
        ),
        banner_class="banner is-up" if live else "banner is-up is-travel",
    )


def refresh_outputs(view: WallView, tiles: Sequence[str], who: Principal) -> tuple[Any, ...]:
    """A refresh's outputs in the callback's order, for the tiles the page lists; a scoped
    caller's map gets colours for its own wards only."""
    hideout = view.hideout
    if not who.city_wide:
        colours = {k: v for k, v in hideout["colours"].items() if who.sees(k)}
        hideout = {**hideout, "colours": colours}
    keep = [no_update] * len(tiles)
    texts = view.tiles
    return (
        hideout,
        view.legend,
        keep if texts is None else [texts[k].value for k in tiles],
        keep if texts is None else [texts[k].trend for k in tiles],
        keep if texts is None else [texts[k].target for k in tiles],
        ["tile stale"] * len(tiles) if texts is None else [texts[k].class_name for k in tiles],
        no_update if view.health is None else view.health,
        no_update if view.alerts is None else view.alerts,
        view.banner,
        view.banner_class,
    )


def rotate(
    state: Mapping[str, Any] | None,
    trigger: str | None,
    clicked_kpi: str | None,
    now_ms: float,
    config: DashboardConfig,
) -> dict[str, Any]:
    """The next rotation state {kpi, paused_at}: a tick moves to the next KPI unless paused
    (a pause ends by itself after resume_after_seconds); a tile click shows that KPI and
    pauses; the pause button toggles."""
    rotation = list(config.wall.rotation)
    kpi = str((state or {}).get("kpi") or rotation[0])
    paused_at = (state or {}).get("paused_at")
    if trigger == "tile" and clicked_kpi in BY_KEY:
        return {"kpi": clicked_kpi, "paused_at": now_ms}
    if trigger == "pause":
        return {"kpi": kpi, "paused_at": None if paused_at is not None else now_ms}
    if trigger == "tick":
        waiting = config.wall.resume_after_seconds * 1000.0
        if paused_at is not None and now_ms - float(paused_at) < waiting:
            return {"kpi": kpi, "paused_at": paused_at}
        nxt = (
            rotation[(rotation.index(kpi) + 1) % len(rotation)] if kpi in rotation else rotation[0]
        )
        return {"kpi": nxt, "paused_at": None}
    return {"kpi": kpi, "paused_at": paused_at}
