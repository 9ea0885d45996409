"""The README's first command, as a newcomer runs it: `make demo` on a clean home directory shows
a coloured map and non-zero KPI tiles in a real browser within a minute; Ctrl-C leaves no
process behind; a second start reuses the data instead of backfilling again."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.demo import (
    REPO,
    URL_RE,
    DemoProcess,
    browser_page,
    cluster_dir,
    default_data_dir,
    demo_env,
    demo_pids,
    free_port,
    remove_fallback_cluster,
    total_wards_hint,
    wait_coloured_map,
)

FIRST_MAP_S = 60.0
HISTORY_S = 400.0


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    remove_fallback_cluster(default_data_dir(home))
    shutil.rmtree(home, ignore_errors=True)


def start(home: Path, port: int) -> DemoProcess:
    return DemoProcess(["make", "-s", "-C", str(REPO), "demo"], home, demo_env(home, port))


def stop_and_check_nothing_left(demo: DemoProcess, data_dir: Path) -> None:
    assert demo_pids(demo, data_dir), "the demo should be running before Ctrl-C"
    demo.interrupt()
    demo.wait(90)
    assert "ioc demo: stopped" in demo.output()
    left = demo_pids(demo, data_dir)
    assert left == [], f"processes left after Ctrl-C: {left}\n{demo.output()}"


def stored_events(data_dir: Path) -> tuple[int, object]:
    """(payment events, earliest event time) straight from the embedded server's socket."""
    run = cluster_dir(data_dir) / "run"
    with psycopg.connect(host=str(run), port=5432, user="ioc_admin", dbname="ioc") as conn:
        row = conn.execute("SELECT count(*), min(event_time) FROM payment_events").fetchone()
    assert row is not None
    return int(row[0]), row[1]


def test_make_demo_shows_a_live_map_within_a_minute_and_restarts_on_its_data(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    data_dir = default_data_dir(home)
    demo = start(home, port)
    try:
        _, match = demo.wait_for(URL_RE.pattern, FIRST_MAP_S)
        assert match.group(1) == f"http://127.0.0.1:{port}/"
        with browser_page() as page:
            seconds, coloured, total, tiles = wait_coloured_map(
                page, match.group(1), demo, FIRST_MAP_S, min_wards=total_wards_hint()
            )
            page.screenshot(path=str(tmp_path / "demo-first-map.png"))
        assert seconds < FIRST_MAP_S
        assert total == 33 and coloured >= total // 2
        assert any(re.search(r"[1-9]", t) for t in tiles)
        output = demo.output()
        assert "new database: backfilling history: 7.0 simulated days" in output
        assert str(data_dir) in output or "/var/lib/ioc/" in output
        demo.wait_for(r"history loaded", HISTORY_S)
        events_first, earliest_first = stored_events(data_dir)
        assert events_first > 500_000  # a week of payments at full volume (~835k)
        stop_and_check_nothing_left(demo, data_dir)
    finally:
        if demo.proc.poll() is None:
            demo.kill()

    again = start(home, port)
    try:
        _, match = again.wait_for(URL_RE.pattern, FIRST_MAP_S)
        _, planned = again.wait_for(r"resuming the demo's stream: ([0-9.]+) simulated", 30)
        assert float(planned.group(1)) < 0.05  # only the minutes it was stopped, no backfill
        assert "reused" in again.output() and "new database" not in again.output()
        again.wait_for(r"history loaded", 60)
        events_again, earliest_again = stored_events(data_dir)
        assert events_again >= events_first
        assert earliest_again == earliest_first
        with browser_page() as page:
            wait_coloured_map(page, match.group(1), again, 90, min_wards=total_wards_hint())
        stop_and_check_nothing_left(again, data_dir)
    finally:
        if again.proc.poll() is None:
            again.kill()
