"""Time travel's pure parts without a database, and the wall and ward builders viewing the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from ioc.core.citypack import load_pack
from ioc.core.contracts import VN_TZ
from ioc.core.queries.alerts import Thresholds, evaluate
from ioc.core.queries.snapshot import WallSnapshot
from ioc.core.queries.timeline import Span
from ioc.core.queries.window import Window
from ioc.core.targets import DashboardConfig
from layouts.kpis import SPECS, STALE
from layouts.pages.timeline.view import (
    EARLIEST,
    MAX_MARKS,
    STEP_S,
    Playback,
    Range,
    control,
    epoch,
    fmt_moment,
    main_trigger,
    parse_as_of,
    range_from_store,
    slider_marks,
    slider_range,
    snap,
    viewing_label,
)
from layouts.pages.wall.view import build_wall
from layouts.pages.ward.export import export_name
from layouts.pages.ward.view import status_text

NOW = datetime(2026, 11, 20, 7, 42, 31, tzinfo=UTC)  # 14:42:31 in Hạ Long
PACK = load_pack("halong")


def test_snap_floors_to_five_minutes_in_both_zones() -> None:
    assert snap(NOW) == datetime(2026, 11, 20, 7, 40, tzinfo=UTC)
    assert snap(NOW.astimezone(VN_TZ)) == datetime(2026, 11, 20, 7, 40, tzinfo=UTC)
    assert snap(datetime(2026, 11, 20, 7, 45, tzinfo=UTC)).minute == 45
    assert snap(NOW, 3600) == datetime(2026, 11, 20, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (None, None),
        ("1795000000", None),  # text is not a time
        (True, None),
        (float("nan"), None),
        (float("inf"), None),
        ([1], None),
        ({"t": 1}, None),
        (NOW.timestamp(), None),  # now is live
        (NOW.timestamp() + 3600, None),  # the future is live
        (NOW.timestamp() - 3600, datetime(2026, 11, 20, 6, 40, tzinfo=UTC)),
        (-1e308, EARLIEST),
        (0, EARLIEST),
    ],
)
def test_parse_as_of_accepts_only_past_numbers(raw: object, want: datetime | None) -> None:
    assert parse_as_of(raw, NOW) == want


def test_slider_range_is_the_span_capped_by_now() -> None:
    span = Span(datetime(2026, 11, 18, 3, tzinfo=UTC), datetime(2026, 11, 20, 8, tzinfo=UTC))
    rng = slider_range(span, NOW)
    assert rng.low == epoch(span.start)
    assert rng.high == epoch(datetime(2026, 11, 20, 7, 40, tzinfo=UTC))  # not the hour's end
    old = Span(span.start, datetime(2026, 11, 19, 1, tzinfo=UTC))
    assert slider_range(old, NOW).high == epoch(old.end)
    empty = slider_range(None, NOW)
    assert empty.high - empty.low == 86400 and empty.high == epoch(snap(NOW))
    assert (empty.low % STEP_S, empty.high % STEP_S) == (0, 0)


def test_range_from_store_is_checked() -> None:
    assert range_from_store({"low": 1_795_000_000, "high": 1_795_100_000}, NOW) == Range(
        1_795_000_000 - 1_795_000_000 % STEP_S, 1_795_100_000 - 1_795_100_000 % STEP_S
    )
    fallback = slider_range(None, NOW)
    for raw in (None, {}, {"low": "a", "high": 1}, {"low": 5, "high": 5}, [1, 2]):
        assert range_from_store(raw, NOW) == fallback
    capped = range_from_store({"low": 0, "high": 1e30}, NOW)
    assert capped == Range(epoch(EARLIEST), epoch(snap(NOW)))


def _local(key: str) -> datetime:
    return datetime.fromtimestamp(int(key), UTC).astimezone(VN_TZ)


def test_marks_fall_on_round_local_times_and_stay_few() -> None:
    two_days = Range(epoch(NOW - timedelta(days=2)), epoch(snap(NOW)))
    marks = slider_marks(two_days, "vi")
    assert 2 <= len(marks) <= MAX_MARKS
    for key, label in marks.items():
        local = _local(key)
        assert two_days.low <= int(key) <= two_days.high
        assert local.minute == 0 and local.hour % 6 == 0
        want = f"{local.day:02d}/{local.month:02d}" if local.hour == 0 else f"{local.hour:02d}:00"
        assert label == want
    assert "19/11" in marks.values() and "20/11" in marks.values()
    month = slider_marks(Range(epoch(NOW - timedelta(days=60)), epoch(NOW)), "en")
    assert 2 <= len(month) <= MAX_MARKS
    assert all(_local(k).hour == 0 for k in month)
    assert all(len(v.split()) == 2 for v in month.values())  # '20 Nov'
    hours = slider_marks(Range(epoch(NOW - timedelta(hours=5)), epoch(NOW)), "vi")
    assert len(hours) == 5 and all(_local(k).minute == 0 for k in hours)


def test_viewing_label_says_live_or_the_time_in_vietnam() -> None:
    assert viewing_label(None, "vi") == "Trực tiếp"
    assert viewing_label(None, "en") == "Live"
    t = datetime(2026, 11, 19, 18, 5, tzinfo=UTC)  # 01:05 on the 20th locally
    assert fmt_moment(t) == "20/11/2026 01:05"
    assert viewing_label(t, "vi") == "Xem lại lúc 20/11/2026 01:05"
    assert viewing_label(t, "en") == "Viewing 20/11/2026 01:05"
    assert status_text(t, NOW, "vi") == "Xem lại lúc 20/11/2026 01:05"
    assert status_text(None, NOW, "en") == "Data as of 14:42:31"
    assert export_name("06658", "24h", t, True) == "ioc-06658-24h-20261120-0105-asof.csv"
    assert export_name("06658", "7d", NOW, False) == "ioc-06658-7d-20261120-1442.csv"


RNG = Range(epoch(NOW - timedelta(days=2)) // STEP_S * STEP_S, epoch(snap(NOW)))


def test_slider_picks_a_time_and_stops_playback() -> None:
    playing = Playback(True, RNG.low, RNG.high)
    picked = RNG.low + 7 * STEP_S + 17
    out = control("slider", picked, None, playing, RNG, "24h", "1h", NOW)
    assert out.as_of == RNG.low + 7 * STEP_S and out.slider == out.as_of
    assert out.playback == Playback() and out.timer_disabled
    below = control("slider", RNG.low - 10**6, None, Playback(), RNG, "24h", "1h", NOW)
    assert below.as_of == RNG.low
    junk = control("slider", "x", snap(NOW - timedelta(hours=3)), Playback(), RNG, "", "", NOW)
    assert junk.as_of == epoch(snap(NOW - timedelta(hours=3)))


def test_live_returns_to_now_and_parks_the_handle_at_the_end() -> None:
    out = control("live", None, NOW - timedelta(hours=5), Playback(True, 1, 2), RNG, "", "", NOW)
    assert out.as_of is None and out.slider == RNG.high and not out.playback.playing
    moved = control(None, None, None, Playback(), RNG, "", "", NOW)
    assert moved.as_of is None and moved.slider == RNG.high


def test_play_walks_the_chosen_range_at_the_chosen_speed_then_stops() -> None:
    out = control("play", None, None, Playback(), RNG, "6h", "1h", NOW)
    assert out.playback == Playback(True, RNG.high - 6 * 3600, RNG.high)
    assert out.as_of == RNG.high - 6 * 3600 and not out.timer_disabled
    seen = [out.as_of]
    for _ in range(10):
        as_of = None if out.as_of is None else datetime.fromtimestamp(out.as_of, UTC)
        out = control("tick", None, as_of, out.playback, RNG, "6h", "1h", NOW)
        seen.append(out.as_of)
        if not out.playback.playing:
            break
    assert seen == [RNG.high - h * 3600 for h in range(6, -1, -1)]
    assert out.timer_disabled and out.as_of == RNG.high


def test_play_starts_from_the_viewed_time_inside_the_range_and_pauses() -> None:
    inside = datetime.fromtimestamp(RNG.high - 3 * 3600, UTC)
    out = control("play", None, inside, Playback(), RNG, "24h", "15m", NOW)
    assert out.as_of == epoch(inside) and out.playback.start == RNG.high - 86400
    step = control("tick", None, inside, out.playback, RNG, "24h", "15m", NOW)
    assert step.as_of == epoch(inside) + 900
    paused = control("play", None, inside, out.playback, RNG, "24h", "15m", NOW)
    assert paused.as_of == epoch(inside) and not paused.playback.playing
    outside = datetime.fromtimestamp(RNG.low, UTC)
    again = control("play", None, outside, Playback(), RNG, "6h", "1h", NOW)
    assert again.as_of == RNG.high - 6 * 3600
    whole = control("play", None, None, Playback(), RNG, "all", "3h", NOW)
    assert whole.as_of == RNG.low
    forged = control("play", None, None, Playback(), RNG, "' OR 1", {"x": 1}, NOW)
    assert forged.playback.end == RNG.high and forged.as_of == RNG.high - 86400


def test_playback_store_is_checked() -> None:
    good = Playback(True, 10, 20)
    assert Playback.from_store(good.to_store()) == good
    for raw in (None, [], {"playing": "yes", "start": 1, "end": 2}, {"playing": True},
                {"playing": True, "start": 5, "end": 5}, {"playing": True, "start": True,
                                                           "end": 9}):  # fmt: skip
        assert Playback.from_store(raw) == Playback()
    tick = control("tick", None, None, good, RNG, "", "", NOW)
    assert tick.as_of is None and not tick.playback.playing


def test_time_travel_windows_count_completed_hours_only() -> None:
    t = datetime(2026, 11, 20, 7, 42, tzinfo=UTC)
    w = Window.today_before(t)
    assert w.start == datetime(2026, 11, 19, 17, tzinfo=UTC) and w.end == datetime(
        2026, 11, 20, 7, tzinfo=UTC
    )
    first_hour = Window.today_before(datetime(2026, 11, 19, 17, 30, tzinfo=UTC))
    assert first_hour.start == first_hour.end and first_hour.local_days() == []
    last = Window.last_before(24, t)
    assert last.end == datetime(2026, 11, 20, 7, tzinfo=UTC) and last.end - last.start == (
        timedelta(hours=24)
    )
    with pytest.raises(ValueError, match="before its start"):
        Window(w.end, w.start)


def _kpis(value: float) -> pd.DataFrame:
    wards = [w.code for w in PACK.wards]
    out = pd.DataFrame(index=pd.Index([*wards, "city"], name="ward_code"))
    for spec in SPECS:
        out[spec.key] = value
    out["aqi"] = 180.0  # every ward over the alert level
    return out


def _snapshot(t: datetime, *, live: bool) -> WallSnapshot:
    """As the core reads it at t: no feed health, alerts from the KPIs (every ward's AQI)."""
    kpis = _kpis(3.0)
    alerts = tuple(evaluate(kpis, (), 0, {}, Thresholds.of(DashboardConfig())))
    return WallSnapshot(t, kpis, _kpis(2.0), (), alerts, live=live)


def test_wall_in_the_past_hides_health_greys_nothing_and_offers_no_ack() -> None:
    t = datetime(2026, 11, 19, 3, 5, tzinfo=UTC)
    snap_ = _snapshot(t, live=False)
    view = build_wall(snap_, PACK, DashboardConfig(), "aqi", "vi")
    text = str(view.health)
    assert "chỉ hiện ở chế độ trực tiếp" in text and "10:00" in text  # hourly KPIs up to 10:00
    assert "#5c6270" not in set(view.hideout["colours"].values())  # nothing stale-grey
    assert not view.hideout["stale"]
    assert view.tiles is not None and all("stale" not in x.class_name for x in view.tiles.values())
    assert view.alerts is not None and "ack-button" not in str(view.alerts)
    assert "alert-aqi" in str(view.alerts)
    assert view.banner == "Xem lại lúc 19/11/2026 10:05"
    assert "is-travel" in view.banner_class
    live = build_wall(_snapshot(t, live=True), PACK, DashboardConfig(), "aqi", "vi")
    assert live.alerts is not None and "ack-button" in str(live.alerts)
    # The same rows read live with no feed health would be all stale: the past is not judged so.
    assert live.hideout["stale"] is True and set(live.hideout["colours"].values()) == {STALE}


def test_people_win_over_the_frame_timer_in_a_merged_request() -> None:
    assert main_trigger({"tick", "play"}) == "play"
    assert main_trigger({"tick", "slider"}) == "slider"
    assert main_trigger({"slider", "live", "tick"}) == "live"
    assert main_trigger({"tick", ""}) == "tick"
    assert main_trigger({""}) is None and main_trigger(set()) is None
