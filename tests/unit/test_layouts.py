"""Wall builders without a database: colours, legends, tiles, stale feeds, alerts, rotation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from ioc.core.aqi import category
from ioc.core.auth.principals import Principal
from ioc.core.citypack import load_pack
from ioc.core.feeds import FEED_NAMES
from ioc.core.health import FeedHealth
from ioc.core.queries.alerts import AlertRef, Thresholds, evaluate
from ioc.core.queries.snapshot import WallSnapshot
from ioc.core.targets import DashboardConfig, Target, Wall
from layouts.components.map import map_hideout, ward_values
from layouts.components.status import alert_list, stale_feeds
from layouts.components.tiles import target_text, tile_texts
from layouts.data import Unavailable
from layouts.kpis import (
    BY_KEY,
    NO_DATA,
    RAMP_GOOD_HIGH,
    SPECS,
    STALE,
    breaks_for,
    class_of,
    colour_of,
    fmt_trend,
    legend_entries,
    nice_step,
)
from layouts.pages.wall.inputs import ack_target
from layouts.pages.wall.view import build_wall, refresh_outputs, rotate

PACK = load_pack("halong")
WARDS = [w.code for w in PACK.wards]
NOW = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


def health(
    feed: str, age: float | None, lag: int | None = 0, ingest_age: float = 1.0
) -> FeedHealth:
    last = None if age is None else NOW - timedelta(seconds=age)
    return FeedHealth(feed, last, NOW - timedelta(seconds=ingest_age), 10, 0, 0, lag, 1.0, NOW, NOW)


def frame(values: dict[str, float]) -> pd.DataFrame:
    """A KPI frame: every KPI column, wards + city, the given KPI values set everywhere."""
    out = pd.DataFrame(index=pd.Index([*WARDS, "city"], name="ward_code"))
    for spec in SPECS:
        out[spec.key] = values.get(spec.key, math.nan)
    return out


def test_aqi_colours_are_the_vn_aqi_categories() -> None:
    spec = BY_KEY["aqi"]
    for value, hexes in ((10, category(0).hex), (151, category(151).hex), (420, category(420).hex)):
        assert colour_of(spec, value, ()) == hexes
    assert colour_of(spec, None, ()) == NO_DATA
    assert len({colour_of(spec, v, ()) for v in (10, 151, 420)}) == 3
    rows = legend_entries(spec, (), "vi")
    assert rows[0][1].endswith("Tốt") and rows[-1][0] == NO_DATA
    assert len(rows) == 7


def test_share_classes_and_direction() -> None:
    spec = BY_KEY["online_share"]
    breaks = breaks_for(spec, [0.1, 0.95])
    assert colour_of(spec, 0.2, breaks) == RAMP_GOOD_HIGH[0]
    assert colour_of(spec, 0.8, breaks) == RAMP_GOOD_HIGH[3]
    assert colour_of(spec, 0.95, breaks) == RAMP_GOOD_HIGH[4]
    assert class_of(0.5, breaks) == 1  # a break belongs to the class above it


@pytest.mark.parametrize(("top", "step"), [(0, 1), (7, 2), (100, 20), (1234, 250), (9e9, 2e9)])
def test_nice_steps_cover_the_top(top: float, step: float) -> None:
    assert nice_step(top) == step
    assert 5 * nice_step(top) >= top


def test_hideout_colours_each_ward_and_greys_when_stale() -> None:
    values = {code: float(i) for i, code in enumerate(WARDS)}
    spec = BY_KEY["transactions"]
    live = map_hideout(spec, values, stale=False, selected=WARDS[0])
    assert set(live["colours"]) == set(WARDS)
    breaks = breaks_for(spec, list(values.values()))
    assert all(live["colours"][c] == colour_of(spec, v, breaks) for c, v in values.items())
    assert len(set(live["colours"].values())) == 4  # 0..32 in classes of 10
    stale = map_hideout(spec, values, stale=True)
    assert set(stale["colours"].values()) == {STALE} and stale["stale"] is True
    assert len(str(live).encode()) < 4000, "a refresh sends colours, never geometry"


def test_ward_values_reads_the_frame() -> None:
    f = frame({"aqi": 77.0})
    got = ward_values(f, "aqi", WARDS)
    assert got == dict.fromkeys(WARDS, 77.0)
    assert all(math.isnan(v) for v in ward_values(f, "no_such", WARDS).values())


def test_trend_texts() -> None:
    assert fmt_trend(BY_KEY["online_share"], 0.85, 0.80, "vi") == "▲ 5,0 điểm"
    assert fmt_trend(BY_KEY["transactions"], 90, 100, "en") == "▼ 10%"
    assert fmt_trend(BY_KEY["overdue_backlog"], 9, 3, "vi") == "—"  # a state: no yesterday
    assert fmt_trend(BY_KEY["aqi"], 120, 100, "vi") == "▲ 20"


def test_target_text_and_tile_classes() -> None:
    spec = BY_KEY["acceptance_points"]
    assert target_text(spec, 6310, 8700, "vi") == "Chỉ tiêu 8.700 · đạt 73 %"
    assert target_text(spec, None, 8700, "en") == "Target 8,700"
    assert target_text(spec, 5, None, "vi") == ""
    config = DashboardConfig(targets={"online_share": Target(city=0.8)})
    tiles = tile_texts(
        frame({"online_share": 0.9, "transactions": 10}),
        frame({"online_share": 0.7, "transactions": 20}),
        config,
        frozenset({"payments"}),
        "online_share",
        "vi",
    )
    assert tiles["online_share"].value == "90,0 %"
    assert "target-met" in tiles["online_share"].class_name
    assert "selected" in tiles["online_share"].class_name
    assert "trend-good" in tiles["online_share"].class_name
    assert "stale" in tiles["transactions"].class_name
    assert "stale" not in tiles["online_share"].class_name


def test_stale_feeds_by_threshold() -> None:
    rows = [health("dossiers", 10), health("payments", 70), health("feedback", None)]
    stale = stale_feeds(rows, dict.fromkeys(FEED_NAMES, 60.0))
    assert stale == {"payments", "feedback", "air_quality"}  # air_quality has no row at all


def test_alerts() -> None:
    kpis = frame({"aqi": 50.0, "overdue_backlog": 0})
    kpis.loc[WARDS[3], "aqi"] = 151
    kpis.loc[WARDS[4], "aqi"] = 150
    kpis.loc[WARDS[5], "overdue_backlog"] = 41
    kpis.loc["city", "aqi"] = 151  # the city repeats the worst ward: never an alert of its own
    th = Thresholds(151, 40, 60.0, dict.fromkeys(FEED_NAMES, 60.0), 20)
    rows = [
        health("dossiers", 5),
        health("payments", 5, lag=100, ingest_age=61),  # waiting messages, nothing ingested
        health("feedback", 5, lag=100, ingest_age=30),
        health("air_quality", 61),
    ]
    alerts = evaluate(kpis, rows, 20, {f"aqi:{WARDS[3]}": NOW}, th)
    keys = [a.ref.key for a in alerts]
    assert keys == [
        "feed_stalled:air_quality",
        "feed_stalled:payments",
        f"aqi:{WARDS[3]}",
        "dead_letters:city",
        f"overdue_backlog:{WARDS[5]}",
    ]
    assert [a.acked for a in alerts if a.kind == "aqi"] == [True]
    assert evaluate(kpis, rows[:1], 19, {}, th)[0].kind == "aqi"
    html = alert_list(alerts, PACK, "vi")
    assert len(html) == 5  # four shown and "+1"
    # What each is about travels as fields, to the acknowledge buttons too.
    stalled, aqi = alerts[0].ref, alerts[2].ref
    assert (stalled.kind, stalled.feed, stalled.ward) == ("feed_stalled", "air_quality", None)
    assert (aqi.kind, aqi.feed, aqi.ward) == ("aqi", "air_quality", WARDS[3])
    assert alerts[3].ref.ward is None and alerts[4].ref.feed == "dossiers"
    assert "'kind': 'feed_stalled', 'subject': 'payments'" in str(html[1])


def test_ack_buttons_name_an_alert_in_the_callers_scope() -> None:
    mgr = Principal("m", "manager", wards=frozenset({WARDS[1]}))
    op = Principal("op", "operator")
    assert ack_target({"kind": "aqi", "subject": WARDS[1]}, mgr, PACK.codes) == AlertRef(
        "aqi", WARDS[1]
    )
    assert ack_target({"kind": "aqi", "subject": WARDS[2]}, mgr, PACK.codes) is None
    assert ack_target({"kind": "feed_stalled", "subject": "payments"}, mgr, PACK.codes)
    city = ack_target({"kind": "dead_letters", "subject": "city"}, op, PACK.codes)
    assert city is not None and city.key == "dead_letters:city"
    forged: list[object] = [
        {"kind": "aqi", "subject": "99999"},
        {"kind": "aqi", "subject": "payments"},
        {"kind": "feed_stalled", "subject": WARDS[1]},
        {"kind": "dead_letters", "subject": WARDS[1]},
        {"kind": "aqi:" + WARDS[1]},
        {"kind": ["aqi"], "subject": WARDS[1]},
        {"kind": "nope", "subject": "city"},
        "aqi:" + WARDS[1],
        None,
    ]
    for button in forged:
        assert ack_target(button, op, PACK.codes) is None, button


def test_rotation_pauses_on_click_and_resumes() -> None:
    config = DashboardConfig(wall=Wall(rotation=("aqi", "online_share"), resume_after_seconds=60))
    s = rotate(None, "tick", None, 0, config)
    assert s == {"kpi": "online_share", "paused_at": None}
    s = rotate(s, "tick", None, 1000, config)
    assert s["kpi"] == "aqi"
    s = rotate(s, "tile", "transactions", 2000, config)
    assert s == {"kpi": "transactions", "paused_at": 2000}
    assert rotate(s, "tick", None, 30_000, config)["kpi"] == "transactions"
    resumed = rotate(s, "tick", None, 62_001, config)
    assert resumed == {"kpi": "aqi", "paused_at": None}  # not in the rotation: start over
    paused = rotate(resumed, "pause", None, 70_000, config)
    assert paused["paused_at"] == 70_000
    assert rotate(paused, "pause", None, 71_000, config)["paused_at"] is None


def test_outage_greys_everything_and_says_since_when() -> None:
    view = build_wall(Unavailable(NOW, "down"), PACK, DashboardConfig(), "aqi", "vi")
    assert view.banner == "Không có dữ liệu từ 10:30; đang thử kết nối lại"
    assert set(view.hideout["colours"].values()) == {STALE}
    assert view.tiles is None and "is-down" in view.banner_class


def test_live_snapshot_builds_every_output() -> None:
    kpis = frame({"aqi": 80.0, "transactions": 5})
    snap = WallSnapshot(NOW, kpis, kpis, tuple(health(f, 1) for f in FEED_NAMES), ())
    view = build_wall(snap, PACK, DashboardConfig(), "aqi", "en")
    assert set(view.hideout["colours"].values()) == {category(80).hex}
    assert view.tiles is not None and view.tiles["transactions"].value == "5"
    assert view.banner == "Data as of 10:30:00" and view.hideout["stale"] is False
    assert isinstance(view.alerts, list)
    scoped = Principal("m", "manager", wards=frozenset(WARDS[:2]))
    out = refresh_outputs(view, ["transactions", "aqi"], scoped)
    assert set(out[0]["colours"]) == set(WARDS[:2]), "a scoped caller gets its wards only"
    assert out[2] == ["5", view.tiles["aqi"].value]
    down = build_wall(Unavailable(NOW, "down"), PACK, DashboardConfig(), "aqi", "en")
    assert refresh_outputs(down, ["aqi"], scoped)[5] == ["tile stale"]
