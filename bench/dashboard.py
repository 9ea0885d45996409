"""Benchmark of the callback step: wall-view refresh and ward-page callback server time, bytes
per map refresh and the dashboard process's memory, at two history sizes (raw events).

Run: python -m bench.dashboard [--events 1000000] [--baseline 100000] (needs `ioc services up`;
writes bench/results/dashboard.json). Each size is filled from the seeded simulator through the
real table writers into its own schema, then `ioc dashboard` serves it in a subprocess; a headless
Chromium records the real callback requests once, and they are replayed over HTTP.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.machine import describe
from ioc.db.migrate import migrate
from ioc.services.state import read_connection_info

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "dashboard.json"
EVENTS_PER_DAY = 130_000  # the simulator's volume at scale 1 for Hạ Long, about
TARGETS = {"wall_p95_ms": 100.0, "ward_p95_ms": 300.0, "map_refresh_bytes": 20_000,
           "rss_mb": 400.0, "ratio": 1.5}  # fmt: skip


def fill(admin_url: str, schema: str, events: int) -> dict[str, int]:
    """A fresh schema holding about `events` raw events ending now (child-free, in-process)."""
    sys.path.insert(0, str(REPO))
    from tests.support import dashboard_fill

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    migrate(admin_url, schema=schema)
    now = datetime.now(UTC)
    days = max(1.0, events / EVENTS_PER_DAY)
    with dashboard_fill.connect(admin_url, schema) as conn:
        written = dashboard_fill.write(
            conn, dashboard_fill.stream(now, timedelta(days=days), 11, 1.0, 20), now, batch=20_000
        )
        dashboard_fill.touch_health(conn, ["dossiers", "payments", "feedback", "air_quality"], now)
        conn.execute("ANALYZE")
    return written


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dashboard(reader_url: str, schema: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(IOC_DATABASE_URL=reader_url, IOC_DB_SCHEMA=schema, IOC_DASHBOARD_PORT=str(port))
    proc = subprocess.Popen(
        [sys.executable, "-m", "ioc.cli", "dashboard"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/", timeout=2).read()  # noqa: S310 - loopback
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the dashboard did not answer within 60 s")


def record(url: str) -> dict[str, bytes]:
    """The request bodies of the wall's refresh and the ward page's refresh, from a browser."""
    from playwright.sync_api import sync_playwright

    bodies: dict[str, bytes] = {}

    def keep(request: Any) -> None:
        if "_dash-update-component" not in request.url or request.post_data is None:
            return
        body = request.post_data
        if "wall-geojson.hideout" in body and "wall" not in bodies:
            bodies["wall"] = body.encode()
        if "ward-kpis.children" in body and "ward" not in bodies:
            bodies["ward"] = body.encode()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.on("request", keep)
        page.goto(url + "/")
        page.wait_for_timeout(3000)
        page.goto(url + "/ward/06658")
        page.wait_for_timeout(4000)
        browser.close()
    return bodies


def replay(url: str, body: bytes, n: int) -> tuple[list[float], int]:
    """Milliseconds per request (server time over loopback) and the response size."""
    times: list[float] = []
    size = 0
    for _ in range(n):
        req = urllib.request.Request(  # noqa: S310 - loopback
            url + "/_dash-update-component", data=body,
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            payload = resp.read()
        times.append((time.perf_counter() - t0) * 1000.0)
        size = len(payload)
    return times, size


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def measure(admin_url: str, reader_url: str, events: int, rounds: int) -> dict[str, Any]:
    schema = f"bench_dash_{events}"
    t0 = time.perf_counter()
    written = fill(admin_url, schema, events)
    fill_s = time.perf_counter() - t0
    proc, url = start_dashboard(reader_url, schema)
    try:
        bodies = record(url)
        replay(url, bodies["wall"], 5)  # warm caches and connections
        wall_ms, wall_bytes = replay(url, bodies["wall"], rounds)
        ward_ms, ward_bytes = replay(url, bodies["ward"], max(10, rounds // 4))
        memory = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return {
        "events_requested": events,
        "events_written": sum(written.values()),
        "by_feed": written,
        "fill_seconds": round(fill_s, 1),
        "wall_refresh_ms": {"p50": round(statistics.median(wall_ms), 1),
                            "p95": round(p95(wall_ms), 1), "n": len(wall_ms)},
        "ward_page_ms": {"p50": round(statistics.median(ward_ms), 1),
                         "p95": round(p95(ward_ms), 1), "n": len(ward_ms)},
        "map_refresh_bytes": wall_bytes,
        "ward_response_bytes": ward_bytes,
        "dashboard_rss_mb": round(memory, 1),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="history size (raw events)")
    parser.add_argument("--baseline", type=int, default=100_000, help="smaller history to compare")
    parser.add_argument("--rounds", type=int, default=200, help="wall refreshes timed per size")
    args = parser.parse_args()
    info = read_connection_info(REPO / ".ioc")
    if not info.admin_url or not info.reader_url:
        print("bench.dashboard: start the services first (`ioc services up`)", file=sys.stderr)
        return 1
    small = measure(info.admin_url, info.reader_url, args.baseline, args.rounds)
    large = measure(info.admin_url, info.reader_url, args.events, args.rounds)
    ratio_wall = large["wall_refresh_ms"]["p95"] / small["wall_refresh_ms"]["p95"]
    ratio_ward = large["ward_page_ms"]["p95"] / small["ward_page_ms"]["p95"]
    result = {
        "benchmark": "dashboard",
        "machine": describe(),
        "note": "server time of the real callback requests replayed over loopback HTTP; "
        "history filled through the real table writers from the seeded simulator",
        "baseline": small,
        "large": large,
        "ratio_large_vs_baseline": {"wall_p95": round(ratio_wall, 2),
                                    "ward_p95": round(ratio_ward, 2)},
        "targets": TARGETS,
        "meets_targets": {
            "wall_p95": large["wall_refresh_ms"]["p95"] < TARGETS["wall_p95_ms"],
            "ward_p95": large["ward_page_ms"]["p95"] < TARGETS["ward_p95_ms"],
            "map_refresh_bytes": large["map_refresh_bytes"] < TARGETS["map_refresh_bytes"],
            "rss": large["dashboard_rss_mb"] < TARGETS["rss_mb"],
            "ratio": max(ratio_wall, ratio_ward) <= TARGETS["ratio"],
        },
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
