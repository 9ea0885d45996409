"""Time travel in headless Chromium: map, tiles, Play and the ward page as of T, against pandas."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from playwright.sync_api import Page, Response
from psycopg import sql

from ioc.app.commands.dashboard import dashboard_app
from ioc.app.services.state import ConnectionInfo
from ioc.app.settings import Settings
from ioc.core.citypack import load_pack
from ioc.core.contracts import VN_TZ
from ioc.core.db.migrate import migrate
from ioc.core.queries.window import HOUR, Window, floor_hour
from ioc.core.targets import load_config
from layouts.components.map import map_hideout, ward_values
from layouts.i18n import t
from layouts.kpis import BY_KEY, fmt_value
from tests.integration.test_dashboard import fills, select_kpi, wait_wall
from tests.support import dashboard_fill as fill
from tests.support import kpi_reference as ref
from tests.support.browser import ARTIFACTS, serve

PACK = load_pack("halong")
WARDS = [w.code for w in PACK.wards]
WARD = "06658"
FEEDS = ["dossiers", "payments", "feedback", "air_quality"]


@dataclasses.dataclass
class Served:
    url: str
    now: datetime
    frames: dict[str, pd.DataFrame]
    offset: timedelta  # the app's clock runs this far behind the real one


@pytest.fixture(scope="module")
def served(services: ConnectionInfo, pg_admin_url: str) -> Iterator[Served]:
    schema = f"t_tt_{uuid.uuid4().hex[:8]}"
    migrate(pg_admin_url, schema=schema)
    offset = fill.daytime_offset(datetime.now(UTC))
    now = datetime.now(UTC) - offset
    messages = list(fill.stream(now - timedelta(minutes=1), timedelta(days=2), 42, 0.15, 10))
    with fill.connect(pg_admin_url, schema) as conn:
        written = fill.write(conn, messages, now)
        fill.touch_health(conn, FEEDS, now)
    frames = ref.load_events(value for _topic, _key, value in messages)
    assert sum(written.values()) == sum(len(f) for f in frames.values()), written
    stop = threading.Event()

    def beat() -> None:
        # A live ingest's heartbeat, so that Live is not stale.
        with fill.connect(pg_admin_url, schema) as conn:
            while not stop.wait(1.0):
                fill.touch_health(conn, FEEDS, datetime.now(UTC))

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    assert services.reader_url
    settings = Settings(database_url=services.reader_url, db_schema=schema)
    config = load_config("halong", PACK.codes)
    # The app's clock is the data's (see daytime_offset); feed health ticks by the real one.
    app = dashboard_app(
        settings, config=config, auth=False, clock=lambda: datetime.now(UTC) - offset
    )  # auth at T: test_time_travel_auth.py
    url, close = serve(app)
    try:
        yield Served(url, now, frames, offset)
    finally:
        stop.set()
        beater.join(timeout=5)
        close()
        app.server.config["IOC_DATA"].close()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def schema_of(frames: dict[str, pd.DataFrame], feed: str) -> pd.DataFrame:
    return frames[f"ioc.{feed}.v1"]


def reference(frames: dict[str, pd.DataFrame], window: Window, at: datetime) -> pd.DataFrame:
    """Every KPI from the raw events with pandas: window KPIs over `window`, cases and air
    quality as of `at` (events after `at` unseen)."""
    s, e = window.start, window.end
    return pd.concat(
        [
            ref.dossiers_as_of(schema_of(frames, "dossiers"), WARDS, s, e, at),
            ref.payments_as_of(schema_of(frames, "payments"), WARDS, s, e, at),
            ref.feedback_as_of(schema_of(frames, "feedback"), WARDS, s, e, at, PACK.ward_at),
            ref.air_quality_as_of(schema_of(frames, "air_quality"), WARDS, at),
        ],
        axis=1,
    )


def live_reference(frames: dict[str, pd.DataFrame], now: datetime) -> pd.DataFrame:
    """The live wall's KPIs (today up to the end of now's hour) from every event."""
    w = Window.today(now)
    return pd.concat(
        [
            ref.dossiers(schema_of(frames, "dossiers"), WARDS, w.start, w.end, now),
            ref.payments(schema_of(frames, "payments"), WARDS, w.start, w.end),
            ref.feedback(schema_of(frames, "feedback"), WARDS, w.start, w.end, now, PACK.ward_at),
            ref.air_quality(schema_of(frames, "air_quality"), WARDS, now),
        ],
        axis=1,
    )


def colours(kpis: pd.DataFrame, kpi: str) -> dict[str, str]:
    """The colours the dashboard's own scale gives these values."""
    want = map_hideout(BY_KEY[kpi], ward_values(kpis, kpi, WARDS), stale=False)["colours"]
    return {k: v.lower() for k, v in want.items()}


def viewed(page: Page) -> datetime:
    """The time the header says is shown ('Xem lại lúc dd/mm/yyyy HH:MM', Vietnam time)."""
    text = page.inner_text("#tt-viewing")
    prefix = t("tt.viewing", "vi", time="")
    assert text.startswith(prefix), text
    local = datetime.strptime(text.removeprefix(prefix), "%d/%m/%Y %H:%M")
    return local.replace(tzinfo=VN_TZ).astimezone(UTC)


def move_timeline_to(page: Page, target: datetime) -> datetime:
    """Click the slider's track where `target` lies; returns the time the header then shows."""
    thumb = page.locator("#tt-slider [role=slider]")
    low = int(thumb.get_attribute("aria-valuemin") or 0)
    high = int(thumb.get_attribute("aria-valuemax") or 0)
    assert low < target.timestamp() < high, (low, target, high)
    box = page.locator("#tt-slider .dash-slider-track").bounding_box()
    assert box is not None
    x = box["x"] + box["width"] * (target.timestamp() - low) / (high - low)
    page.mouse.click(x, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "document.querySelector('#tt-viewing').className.includes('is-travel')", timeout=10_000
    )
    return viewed(page)


def watch_frames(page: Page) -> None:
    """Count the ward polygons in every animation frame the browser paints: the layer's restyle
    must never paint a frame without them (dash-leaflet rebuilds the layer's paths from the
    data it already holds, within one task)."""
    page.evaluate(
        """() => { const w = window.__iocFrames = {frames: 0, fewest: 1e9};
            const tick = () => { const n = document.querySelectorAll('path.ward').length;
                w.frames += 1; w.fewest = Math.min(w.fewest, n); requestAnimationFrame(tick); };
            requestAnimationFrame(tick); }"""
    )


def painted(page: Page) -> tuple[int, int]:
    """(frames painted, fewest ward polygons in any of them) since watch_frames."""
    got: dict[str, int] = page.evaluate("() => window.__iocFrames")
    return got["frames"], got["fewest"]


def callback_responses(page: Page) -> list[Response]:
    kept: list[Response] = []
    page.on(
        "response",
        lambda r: kept.append(r) if "/_dash-update-component" in r.url else None,
    )
    return kept


def no_geometry_sent(responses: list[Response]) -> int:
    """How many callback answers there were; fails if any carried the wards' GeoJSON."""
    n = 0
    for r in responses:
        if r.status != 200:
            continue
        body = json.loads(r.body())
        assert "data" not in body.get("response", {}).get("wall-geojson", {}), "geometry resent"
        n += 1
    return n


def afternoon_yesterday(now: datetime) -> datetime:
    """15:20 local on the day before: a time with a day's worth of completed hours."""
    local = (now - timedelta(days=1)).astimezone(VN_TZ)
    return local.replace(hour=15, minute=20, second=0, microsecond=0).astimezone(UTC)


def test_timeline_to_t_shows_the_kpis_at_t_then_live_shows_now(served: Served, page: Page) -> None:
    responses = callback_responses(page)
    wait_wall(page, served.url)
    assert page.inner_text("#tt-viewing") == t("tt.live", "vi")
    watch_frames(page)
    at = move_timeline_to(page, afternoon_yesterday(served.now))
    assert abs((at - afternoon_yesterday(served.now)).total_seconds()) < 3 * 3600
    assert at.minute % 5 == 0 and at < served.now - timedelta(hours=12)
    local_day = at.astimezone(VN_TZ).replace(hour=0, minute=0)
    at_t = reference(served.frames, Window(local_day.astimezone(UTC), floor_hour(at)), at)
    live = live_reference(served.frames, datetime.now(UTC) - served.offset)
    for kpi in ("transactions", "aqi", "open_reports", "received"):
        select_kpi(page, kpi)
        want = colours(at_t, kpi)
        assert fills(page) == want, f"{kpi} at {at}"
        assert len(set(want.values())) > 1, f"{kpi}: one colour proves little"
        shown = page.inner_text(f'[id=\'{{"kpi":"{kpi}","type":"tile-value"}}\']')
        assert shown == fmt_value(BY_KEY[kpi], float(at_t[kpi]["city"]), "vi"), kpi
    # The past at T is not the present: some of these maps differ from the live ones.
    assert any(colours(at_t, k) != colours(live, k) for k in ("transactions", "aqi", "received"))
    # How the past is told apart: header badge, frame, banner, no feed health, no acks.
    assert page.get_attribute("#app-root", "class") == "ioc-app is-travel"
    assert page.inner_text("#wall-banner") == t(
        "tt.viewing", "vi", time=at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
    )
    assert page.locator(".feed-health").count() == 0
    assert page.locator(".travel-note").count() == 1
    assert page.locator(".ack-button").count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    select_kpi(page, "transactions")
    page.screenshot(path=str(ARTIFACTS / "wall-time-travel.png"))
    page.click("#tt-live")
    page.wait_for_function(
        "document.querySelector('#tt-viewing').className.includes('is-live')", timeout=10_000
    )
    for kpi in ("transactions", "aqi"):
        select_kpi(page, kpi)
        assert fills(page) == colours(
            live_reference(served.frames, datetime.now(UTC) - served.offset), kpi
        ), kpi
    assert page.locator(".feed-health.is-live").count() == len(FEEDS)
    frames, fewest = painted(page)
    assert frames > 100 and fewest == len(WARDS), "every painted frame shows every ward"
    assert no_geometry_sent(responses) > 10


def choose(page: Page, dropdown: str, label: str) -> None:
    page.click(f"#{dropdown}")
    page.get_by_role("option", name=label).click()


def test_play_steps_through_the_range_without_redrawing(served: Served, page: Page) -> None:
    responses = callback_responses(page)
    wait_wall(page, served.url)
    select_kpi(page, "aqi")
    watch_frames(page)
    choose(page, "tt-range", t("tt.r24h", "vi"))
    page.click("#tt-play")
    page.wait_for_function(
        "document.querySelector('#tt-viewing').className.includes('is-travel')", timeout=10_000
    )
    assert page.inner_text("#tt-play") == t("tt.pause", "vi")
    seen: list[datetime] = []
    drawn: list[dict[str, str]] = []
    deadline = time.monotonic() + 6.0
    while time.monotonic() < deadline:
        moment = viewed(page)
        if not seen or moment != seen[-1]:
            seen.append(moment)
            time.sleep(0.6)  # the frame's map refresh
            drawn.append(fills(page))
        time.sleep(0.1)
    page.click("#tt-play")  # pause
    assert len(seen) >= 4, seen
    steps = {b - a for a, b in itertools.pairwise(seen)}
    assert steps == {HOUR}, f"1 h per frame at the default speed: {seen}"
    assert served.now - timedelta(hours=25) < seen[0] <= served.now - timedelta(hours=23)
    assert len({json.dumps(d, sort_keys=True) for d in drawn}) > 1, "the map changes with T"
    page.wait_for_function(
        f"document.querySelector('#tt-play').textContent === {t('tt.play', 'vi')!r}",
        timeout=5_000,
    )
    paused = viewed(page)
    time.sleep(2.5)
    assert viewed(page) == paused, "paused playback stays put"
    # At 3 h per frame the last 6 h take two frames, then playback stops at the range's end.
    choose(page, "tt-range", t("tt.r6h", "vi"))
    choose(page, "tt-speed", t("tt.s3h", "vi"))
    page.click("#tt-play")
    page.wait_for_function(
        f"document.querySelector('#tt-play').textContent === {t('tt.pause', 'vi')!r}",
        timeout=5_000,
    )
    page.wait_for_function(
        f"document.querySelector('#tt-play').textContent === {t('tt.play', 'vi')!r}",
        timeout=10_000,
    )
    high = int(page.get_attribute("#tt-slider [role=slider]", "aria-valuemax") or 0)
    assert viewed(page) == datetime.fromtimestamp(high, UTC)
    frames, fewest = painted(page)
    assert frames > 100 and fewest == len(WARDS), "no frame without the wards (no flicker)"
    assert no_geometry_sent(responses) >= len(seen)
    page.click("#tt-live")
    page.wait_for_function(
        "document.querySelector('#tt-viewing').className.includes('is-live')", timeout=10_000
    )


def test_ward_page_and_export_are_as_of_t(served: Served, page: Page) -> None:
    wait_wall(page, served.url)
    at = move_timeline_to(page, afternoon_yesterday(served.now))
    page.locator(f"path.ward-{WARD}").click(force=True)
    page.wait_for_url(f"**/ward/{WARD}", timeout=10_000)
    page.wait_for_selector(".kpi-table", timeout=20_000)
    moment = at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
    page.wait_for_function(
        f"document.querySelector('#ward-status').textContent === "
        f"{t('tt.viewing', 'vi', time=moment)!r}",
        timeout=10_000,
    )
    assert viewed(page) == at, "the viewed time survives the move to the ward page"
    want = reference(served.frames, Window.last_before(24, at), at)
    row = page.locator(".kpi-table tr", has_text=t("kpi.transactions", "vi")).first.inner_text()
    cells = row.split("\t")
    assert cells[1:] == [
        fmt_value(BY_KEY["transactions"], float(want["transactions"][WARD]), "vi"),
        fmt_value(BY_KEY["transactions"], float(want["transactions"]["city"]), "vi"),
    ], row
    page.wait_for_function(
        "() => { const g = document.querySelector('#ward-series-payments .js-plotly-plot');"
        " return g !== null && g.data && g.data.length > 0; }",
        timeout=10_000,
    )
    last_x = page.evaluate(
        "() => { const g = document.querySelector('#ward-series-payments .js-plotly-plot');"
        " const xs = g.data[0].x; return xs[xs.length - 1]; }"
    )
    last_hour = (floor_hour(at) - HOUR).astimezone(VN_TZ).strftime("%Y-%m-%d %H:%M")
    assert last_x == last_hour, "the series ends with T's last completed hour"
    with page.expect_download() as info:
        page.click("#ward-export")
    assert info.value.suggested_filename.endswith("-asof.csv")
    lines = Path(info.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "section,item,detail,ward,city"
    assert lines[1] == f"as_of,{at.astimezone(VN_TZ).isoformat()},time_travel,{WARD},"
    assert not any(last_hour < line.split(",")[2][:16].replace("T", " ") for line in lines
                   if line.startswith("series."))  # fmt: skip
    page.click("#tt-live")
    page.wait_for_function(
        "document.querySelector('#ward-status').textContent.startsWith('Dữ liệu lúc')",
        timeout=10_000,
    )
    page.screenshot(path=str(ARTIFACTS / "ward-live-after-travel.png"), full_page=False)
