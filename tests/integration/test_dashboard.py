"""The live dashboard in headless Chromium over a seeded simulator stream: map, tiles, outages."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page
from psycopg import sql

from ioc.app.commands.dashboard import dashboard_app, open_pool
from ioc.app.services.state import ConnectionInfo
from ioc.app.settings import Settings
from ioc.core.citypack import load_pack
from ioc.core.db.migrate import migrate
from ioc.core.queries.snapshot import all_kpis
from ioc.core.targets import load_config
from layouts.app import create_app
from layouts.components.map import map_hideout, ward_values
from layouts.i18n import t
from layouts.kpis import BY_KEY, STALE, fmt_value
from layouts.security import AuthOptions
from tests.support import dashboard_fill as fill
from tests.support.browser import ARTIFACTS, serve

PACK = load_pack("halong")
WARDS = [w.code for w in PACK.wards]
STALE_S = 6.0


@dataclasses.dataclass
class Served:
    url: str
    schema: str
    admin_url: str
    reader_url: str
    heartbeat: Callable[[set[str]], None]  # which feeds keep ticking
    offset: timedelta  # the app's clock runs this far behind the real one


@pytest.fixture(scope="module")
def dashboard(services: ConnectionInfo, pg_admin_url: str) -> Iterator[Served]:
    schema = f"t_dash_{uuid.uuid4().hex[:8]}"
    migrate(pg_admin_url, schema=schema)
    offset = fill.daytime_offset(datetime.now(UTC))
    now = datetime.now(UTC) - offset
    with fill.connect(pg_admin_url, schema) as conn:
        written = fill.write(
            conn, fill.stream(now - timedelta(minutes=1), timedelta(days=2), 42, 0.15, 10), now
        )
        fill.touch_health(conn, ["dossiers", "payments", "feedback", "air_quality"], now)
    assert written["payments"] > 1000 and written["air_quality"] > 100, written
    assert services.reader_url
    live = {"feeds": {"dossiers", "payments", "feedback", "air_quality"}}
    stop = threading.Event()

    def beat() -> None:
        # A live ingest's heartbeat: the newest event time of each ticking feed moves to now.
        with fill.connect(pg_admin_url, schema) as conn:
            while not stop.wait(1.0):
                fill.touch_health(conn, sorted(live["feeds"]), datetime.now(UTC))

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    base = load_config("halong", PACK.codes)
    config = dataclasses.replace(base, stale_after_s=dict.fromkeys(base.stale_after_s, STALE_S))
    settings = Settings(database_url=services.reader_url, db_schema=schema)
    # The app's clock is the data's: feed health still ticks by the database's real clock.
    app = dashboard_app(
        settings, config=config, auth=False, clock=lambda: datetime.now(UTC) - offset
    )  # auth: see test_auth*.py
    url, close = serve(app)

    def heartbeat(feeds: set[str]) -> None:
        live["feeds"] = set(feeds)

    try:
        yield Served(url, schema, pg_admin_url, services.reader_url, heartbeat, offset)
    finally:
        stop.set()
        beater.join(timeout=5)
        close()
        app.server.config["IOC_DATA"].close()
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def expected_kpis(served: Served) -> Any:
    with psycopg.connect(served.reader_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(served.schema)))
        return all_kpis(conn, WARDS, datetime.now(UTC) - served.offset)


def fills(page: Page) -> dict[str, str]:
    """Ward code -> the fill colour Leaflet drew for its polygon."""
    raw: dict[str, str] = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('path.ward'))
            .map(p => [Array.from(p.classList).find(c => /^ward-\\d{5}$/.test(c)).slice(5),
                       p.getAttribute('fill')]))"""
    )
    return {k: v.lower() for k, v in raw.items()}


def wait_wall(page: Page, url: str) -> None:
    page.goto(url + "/")
    page.wait_for_function("document.querySelectorAll('path.ward').length > 0", timeout=20_000)
    page.wait_for_function(
        "document.querySelector('#wall-banner') && "
        "document.querySelector('#wall-banner').className.includes('is-up')",
        timeout=20_000,
    )


def select_kpi(page: Page, kpi: str) -> None:
    page.click(f'[id=\'{{"kpi":"{kpi}","type":"tile"}}\']')
    page.wait_for_function(
        f"document.querySelector('.legend-title').textContent === {t('kpi.' + kpi, 'vi')!r}",
        timeout=10_000,
    )
    time.sleep(1.5)  # one refresh after the selection


def test_wall_map_tiles_and_colours_match_the_database(dashboard: Served, page: Page) -> None:
    wait_wall(page, dashboard.url)
    drawn = fills(page)
    assert sorted(drawn) == WARDS, "one polygon per ward of the pack"
    assert page.locator(".leaflet-tile").count() == 0, "no tile layer without IOC_MAP_TILES_URL"
    for kpi in ("aqi", "online_share", "transactions"):
        select_kpi(page, kpi)
        want = map_hideout(
            BY_KEY[kpi], ward_values(expected_kpis(dashboard), kpi, WARDS), stale=False
        )["colours"]
        got = fills(page)
        assert got == {k: v.lower() for k, v in want.items()}, kpi
        assert len(set(got.values())) > 1, f"{kpi}: the map should not be one colour"
    kpis = expected_kpis(dashboard)
    for kpi in ("received", "transactions", "amount_vnd", "aqi", "online_share"):
        want_text = fmt_value(BY_KEY[kpi], float(kpis[kpi]["city"]), "vi")
        shown = page.locator(f'[id=\'{{"kpi":"{kpi}","type":"tile-value"}}\']')
        assert shown.inner_text() == want_text, kpi
    ARTIFACTS.mkdir(exist_ok=True)
    select_kpi(page, "aqi")
    page.screenshot(path=str(ARTIFACTS / "wall.png"))


def test_refresh_keeps_the_zoom(dashboard: Served, page: Page) -> None:
    wait_wall(page, dashboard.url)
    box0 = page.locator("path.ward-06658").bounding_box()
    page.click(".leaflet-control-zoom-in")
    time.sleep(1.0)
    box1 = page.locator("path.ward-06658").bounding_box()
    assert box0 and box1 and box1["width"] > box0["width"] * 1.5, "zoom-in must enlarge it"
    before = page.inner_text("#wall-banner")
    page.wait_for_function(
        f"document.querySelector('#wall-banner').textContent !== {before!r}", timeout=10_000
    )
    time.sleep(2.5)  # a few more refreshes
    box2 = page.locator("path.ward-06658").bounding_box()
    assert box2 == box1


def test_click_ward_opens_its_page_and_exports_csv(dashboard: Served, page: Page) -> None:
    wait_wall(page, dashboard.url)
    page.locator("path.ward-06658").click(force=True)
    page.wait_for_url("**/ward/06658", timeout=10_000)
    page.wait_for_selector("text=" + PACK.ward("06658").name)
    page.wait_for_selector(".kpi-table", timeout=20_000)
    kpis = expected_kpis(dashboard)  # AQI is current in both the wall's and the page's windows
    row = page.locator(".kpi-table tr", has_text="VN_AQI").first.inner_text()
    assert fmt_value(BY_KEY["aqi"], float(kpis["aqi"]["city"]), "vi") in row
    with page.expect_download() as info:
        page.click("#ward-export")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith("section,item,detail,ward,city")
    assert "series.payments" in text and "kpi" in text
    page.wait_for_timeout(1500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ward.png"), full_page=True)


def test_language_toggle_changes_labels(dashboard: Served, page: Page) -> None:
    wait_wall(page, dashboard.url)
    assert page.inner_text("#app-title") == t("app.title", "vi")
    page.click("#lang-button")
    page.wait_for_function(
        f"document.querySelector('#app-title').textContent === {t('app.title', 'en')!r}"
    )
    page.wait_for_selector(f"text={t('feed.payments', 'en')}")
    assert page.locator(".tile-label", has_text=t("kpi.on_time_rate", "en")).count() == 1
    page.click("#lang-button")
    page.wait_for_function(
        f"document.querySelector('#app-title').textContent === {t('app.title', 'vi')!r}"
    )


def test_stopped_feed_turns_stale_within_its_threshold(dashboard: Served, page: Page) -> None:
    wait_wall(page, dashboard.url)
    select_kpi(page, "transactions")
    payments = page.locator(".feed-health[title='payments']")
    assert "is-live" in (payments.get_attribute("class") or "")
    dashboard.heartbeat({"dossiers", "feedback", "air_quality"})
    stopped = time.monotonic()
    try:
        page.wait_for_function(
            "document.querySelector(\".feed-health[title='payments']\").className"
            ".includes('is-stale')",
            timeout=(STALE_S + 4) * 1000,
        )
        took = time.monotonic() - stopped
        assert took <= STALE_S + 3.0, f"stale shown after {took:.1f} s"
        tile = page.locator('[id=\'{"kpi":"transactions","type":"tile"}\']')
        page.wait_for_function(
            'document.getElementById(\'{"kpi":"transactions","type":"tile"}\')'
            ".className.includes('stale')",
            timeout=3000,
        )
        assert "stale" in (tile.get_attribute("class") or "")
        dossiers = page.locator(".feed-health[title='dossiers']")
        assert "is-live" in (dossiers.get_attribute("class") or "")
        time.sleep(1.5)
        assert set(fills(page).values()) == {STALE.lower()}, "stale map colours are grey"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wall-stale.png"))
    finally:
        dashboard.heartbeat({"dossiers", "payments", "feedback", "air_quality"})


def test_database_down_says_since_when_and_recovers(
    services: ConnectionInfo, dashboard: Served, page: Page
) -> None:
    up = {"ok": False}

    def conninfo() -> str:
        # Asked on every connect: the database "comes back" when the test says so.
        if not up["ok"]:
            raise psycopg.OperationalError("connection refused (test)")
        return dashboard.reader_url

    app = create_app(
        PACK,
        load_config("halong", PACK.codes),
        open_pool(conninfo, dashboard.schema, max_size=4),
        auth=AuthOptions(enabled=False),
        clock=lambda: datetime.now(UTC) - dashboard.offset,  # the data's clock, as the fixture's
    )
    url, close = serve(app)
    try:
        page.goto(url + "/")
        page.wait_for_function(
            "document.querySelector('#wall-banner') && "
            "document.querySelector('#wall-banner').className.includes('is-down')",
            timeout=20_000,
        )
        banner = page.inner_text("#wall-banner")
        assert banner.startswith("Không có dữ liệu từ "), banner
        assert set(fills(page).values()) == {STALE.lower()}
        up["ok"] = True
        page.wait_for_function(
            "document.querySelector('#wall-banner').className.includes('is-up')", timeout=10_000
        )
        # The banner and the styles arrive in one response; Leaflet repaints a frame later.
        page.wait_for_function(
            "new Set(Array.from(document.querySelectorAll('path.ward'))"
            ".map(p => p.getAttribute('fill'))).size > 1",
            timeout=5_000,
        )
        assert len(set(fills(page).values())) > 1
    finally:
        close()
        app.server.config["IOC_DATA"].close()
