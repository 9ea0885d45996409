"""A continuous aggregate of payments beside the hand-kept hourly rollup, in one scratch schema.

python -m bench.timescale caggs [--events 500000]: a schema of database ioc is filled through the
feed writers (so payment_stats_hourly is the product's own rollup) with N events ending now.
On its payment_events a real-time continuous aggregate with the same columns as
payment_stats_hourly is created and refreshed up to one hour ago (as a refresh policy with
end_offset 1 hour would leave it), and a second one only up to six hours ago (a policy running
late). Then:
  exactness   the wall's payments query (ioc.core.queries.payments.SUM_ROLLUP) on the rollup and on
              each aggregate, for today, the last 24 h and the last 7 days;
  freshness   2,000 payments of now, then 2,000 payments of three hours ago (a consumer catching
              up after an outage) are written by PaymentWriter: what each side shows at once, and
              after the refresh a policy would run next (with its cost);
  ingest      interleaved batches of 5,000 new payments: PaymentWriter (raw rows + rollups, the
              product), raw rows only into the table that feeds the aggregates (invalidation
              log), raw rows only into a table without aggregates, and the hourly refresh's cost
              per event;
  query time  p50/p95 of the wall's query on each, with a normal tail and again after the
              ingest batches (a tail as large as a national hour).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from bench.machine import describe
from bench.timescale import drop_schema, fresh_schema, log, services, write_results
from bench.ts_storage import connect, pause_policies
from ioc.core.citypack import load_pack
from ioc.core.contracts import PUBLIC_COUNTER_TYPES, PaymentEvent, decode_event
from ioc.core.queries.payments import SUM_ROLLUP
from ioc.core.queries.window import HOUR, Window, floor_hour
from streams.ingest.storage import stage_rows
from streams.ingest.writers.base import Accepted
from streams.ingest.writers.payments import EVENT_COLUMNS
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord

PUBLIC = sql.SQL(", ").join(sql.Literal(t) for t in sorted(PUBLIC_COUNTER_TYPES))
CAGG = """
CREATE MATERIALIZED VIEW {name}
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT ward_code, time_bucket(INTERVAL '1 hour', event_time) AS bucket,
       count(*) FILTER (WHERE status = 'succeeded') AS transactions,
       coalesce(sum(amount_vnd) FILTER (WHERE status = 'succeeded'), 0) AS amount_vnd,
       count(*) FILTER (WHERE status = 'succeeded' AND merchant_type IN ({public})) AS public_total,
       count(*) FILTER (WHERE status = 'succeeded' AND merchant_type IN ({public})
                        AND channel <> 'cash') AS public_cashless,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM payment_events
GROUP BY 1, 2
WITH NO DATA
"""
RAW_ONLY = """
INSERT INTO payment_events (event_id, event_time, ward_code, payment_id, merchant_id,
                            merchant_type, channel, amount_vnd, status)
SELECT event_id, event_time, ward_code, payment_id, merchant_id, merchant_type, channel,
       amount_vnd, status
FROM stage_payment_events
"""
COLUMNS = EVENT_COLUMNS  # the raw table the ingest writes, column for column
BATCH = 5_000


def _say(line: str) -> None:
    log("caggs", line)


def _stats(ms: Sequence[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "n": len(ordered),
    }


def payments(n: int, end: datetime, minutes: int) -> list[PaymentEvent]:
    """n payments from the seeded simulator, retimed into the `minutes` before `end`."""
    from tests.support.dashboard_fill import stream

    pack = load_pack("halong")
    out: list[PaymentEvent] = []
    for topic, _key, value in stream(end, timedelta(days=max(1, n // 100_000 + 1)), 31, 1.0, 1):
        if topic != "ioc.payments.v1":
            continue
        ev = decode_event(value, wards=pack, now=end + timedelta(days=400))
        assert isinstance(ev, PaymentEvent)  # noqa: S101 - the topic says so
        out.append(ev)
        if len(out) == n:
            break
    span = timedelta(minutes=minutes)
    return [
        msgspec.structs.replace(
            ev, event_id=f"cagg-{i}-{ev.event_id}", event_time=end - span + span * i / len(out)
        )
        for i, ev in enumerate(out)
    ]


def accepted(events: Sequence[PaymentEvent]) -> list[Accepted]:
    return [
        Accepted(SourceRecord("ioc.payments.v1", 0, i, None, b"", 0), e)
        for i, e in enumerate(events)
    ]


def wall_query(
    conn: psycopg.Connection[Any], source: str, window: Window
) -> dict[str, tuple[int, ...]]:
    q = SUM_ROLLUP.replace("payment_stats_hourly", source)
    rows = conn.execute(q, {"start": window.start, "end": window.end}).fetchall()
    return {str(r[0]): tuple(int(v) for v in r[1:]) for r in rows}


def city(rows: dict[str, tuple[int, ...]]) -> list[int]:
    return [sum(r[i] for r in rows.values()) for i in range(4)]


def refresh(
    conn: psycopg.Connection[Any], name: str, start: datetime | None, end: datetime
) -> float:
    t0 = time.perf_counter()
    conn.execute(
        "CALL refresh_continuous_aggregate(%(n)s, %(s)s::timestamptz, %(e)s::timestamptz)",
        {"n": name, "s": start, "e": end},
    )
    return time.perf_counter() - t0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timescale caggs", description=__doc__)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batches", type=int, default=12, help="ingest batches per variant")
    args = parser.parse_args(argv)
    info = services()
    admin = str(info.admin_url)
    from bench.dashboard import fill

    schema = f"bench_tsc_{args.events}"
    bare = fresh_schema(admin, "bench_tsc_bare")
    result: dict[str, Any] = {
        "benchmark": "timescale_caggs",
        "machine": describe(),
        "command": "python -m bench.timescale caggs " + " ".join(argv),
    }
    try:
        t0 = time.perf_counter()
        written = fill(admin, schema, args.events)
        result["fill"] = {"events": written, "seconds": round(time.perf_counter() - t0, 1)}
        _say(f"filled {schema}: {written}")
        with connect(admin, schema) as conn, connect(admin, bare) as bare_conn:
            pause_policies(conn, schema)
            pause_policies(bare_conn, bare)
            result.update(experiment(conn, bare_conn, args.batches))
    finally:
        drop_schema(admin, schema)
        drop_schema(admin, bare)
    path = write_results("timescale_caggs.json", result)
    _say(f"results in {path}")
    print(json.dumps(result["summary"], indent=2))
    return 0


def experiment(
    conn: psycopg.Connection[Any], bare: psycopg.Connection[Any], batches: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    now = datetime.now(UTC)
    watermark_1h = floor_hour(now) - HOUR
    watermark_6h = floor_hour(now) - 6 * HOUR
    build: dict[str, float] = {}
    for name, upto in (("cagg_1h", watermark_1h), ("cagg_6h", watermark_6h)):
        conn.execute(sql.SQL(CAGG).format(name=sql.Identifier(name), public=PUBLIC))
        build[name] = round(refresh(conn, name, None, upto), 2)
    out["materialize_seconds"] = build
    raw = conn.execute("SELECT count(*) FROM payment_events").fetchone()
    out["raw_payments"] = int(raw[0]) if raw else 0
    windows = {
        "today": Window.today(now),
        "last_24h": Window.last(24, now),
        "last_7d": Window.last(24 * 7, now),
    }
    sources = ("payment_stats_hourly", "cagg_1h", "cagg_6h")

    def exact() -> dict[str, Any]:
        res: dict[str, Any] = {}
        for wname, w in windows.items():
            got = {s: city(wall_query(conn, s, w)) for s in sources}
            res[wname] = {
                "city_transactions": {s: got[s][0] for s in sources},
                "equal": all(got[s] == got["payment_stats_hourly"] for s in sources),
            }
        return res

    out["exact_after_fill"] = exact()
    # Query time with the tail of a city's normal hour or two (before any bench batches).
    out["wall_query_ms"] = timings(conn, sources)
    out["tail_rows"] = tail_rows(conn, watermark_1h)
    _say(f"exact after fill: {out['exact_after_fill']}")

    # Freshness: 2,000 payments of now, then 2,000 of three hours ago (before the watermark).
    writer = WRITERS["payments"]
    fresh_now = payments(2_000, datetime.now(UTC), 10)
    late = [
        msgspec.structs.replace(
            e, event_id="late-" + e.event_id, event_time=e.event_time - timedelta(hours=3)
        )
        for e in payments(2_000, datetime.now(UTC), 10)
    ]
    fresh: dict[str, Any] = {}
    for label, evs in (("events_of_now", fresh_now), ("events_3h_late", late)):
        w = Window.last(24, datetime.now(UTC))
        before = {s: city(wall_query(conn, s, w))[0] for s in sources}
        with conn.transaction():
            writer.write(conn, accepted(evs))
        t_commit = time.perf_counter()
        after = {s: city(wall_query(conn, s, w))[0] for s in sources}
        seen_s = round(time.perf_counter() - t_commit, 3)
        succeeded = sum(1 for e in evs if e.status == "succeeded")
        fresh[label] = {
            "succeeded_written": succeeded,
            "visible_at_once": {s: after[s] - before[s] for s in sources},
            "read_within_s": seen_s,
        }
    # The refresh a policy (end_offset 1 hour) would run next: the late hours become exact.
    fresh["refresh_after_late_s"] = round(
        refresh(conn, "cagg_1h", now - timedelta(days=1), floor_hour(datetime.now(UTC)) - HOUR), 3
    )
    w = Window.last(24, datetime.now(UTC))
    fresh["after_refresh"] = {s: city(wall_query(conn, s, w))[0] for s in sources}
    out["freshness"] = fresh
    _say(f"freshness: {fresh}")

    # Ingest cost, interleaved: product writer / raw only (with the aggregates' invalidation
    # log) / raw only on a schema without aggregates.
    n = batches * BATCH
    events = payments(3 * n, datetime.now(UTC), 30)
    variants: dict[str, list[float]] = {
        "writer_with_rollups": [],
        "raw_only_cagg_table": [],
        "raw_only_no_cagg": [],
    }

    def raw_only(c: psycopg.Connection[Any], evs: Sequence[PaymentEvent]) -> None:
        rows = [
            (
                e.event_id,
                e.event_time,
                e.ward_code,
                e.payment_id,
                e.merchant_id,
                e.merchant_type,
                e.channel,
                e.amount_vnd,
                e.status,
            )
            for e in evs
        ]
        with c.transaction():
            stage_rows(c, "payment_events", COLUMNS, rows)
            c.execute(RAW_ONLY)

    runs: dict[str, Callable[[Sequence[PaymentEvent]], None]] = {
        "writer_with_rollups": lambda evs: _in_tx(conn, lambda: writer.write(conn, accepted(evs))),
        "raw_only_cagg_table": lambda evs: raw_only(conn, evs),
        "raw_only_no_cagg": lambda evs: raw_only(bare, evs),
    }
    for b in range(batches):
        order = list(runs) if b % 2 == 0 else list(reversed(runs))
        for k, name in enumerate(order):
            i = (b * 3 + k) * BATCH
            t0 = time.perf_counter()
            runs[name](events[i : i + BATCH])
            variants[name].append((time.perf_counter() - t0) * 1e6 / BATCH)
    # The policy's hourly refresh: re-materialize the last two hours (what end_offset 1 hour and
    # an hourly schedule re-read), per event of an hour at this ingest volume.
    t_end = floor_hour(datetime.now(UTC))
    refresh_s = refresh(conn, "cagg_1h", t_end - 2 * HOUR, t_end)
    per_hour = conn.execute(
        "SELECT count(*) FROM payment_events WHERE event_time >= %(a)s AND event_time < %(b)s",
        {"a": t_end - 2 * HOUR, "b": t_end},
    ).fetchone()
    hour_events = int(per_hour[0]) if per_hour else 0
    out["ingest_us_per_event"] = {
        k: {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "batches": len(v)}
        for k, v in variants.items()
    }
    out["hourly_refresh"] = {
        "seconds": round(refresh_s, 3),
        "events_in_range": hour_events,
        "us_per_event": round(1e6 * refresh_s / max(1, hour_events), 2),
    }
    _say(f"ingest: {out['ingest_us_per_event']} refresh {out['hourly_refresh']}")

    # Query time of the wall's payments query, now with the ingest batches in the tail.
    out["wall_query_ms_after_ingest"] = timings(conn, sources)
    out["tail_rows_after_ingest"] = tail_rows(conn, watermark_1h)
    # Not equal, by design: the raw-only batches above fed the aggregates but not the rollup
    # (their difference is what those batches wrote).
    out["totals_after_raw_only_batches"] = exact()
    ing = out["ingest_us_per_event"]
    qt, qa = out["wall_query_ms"], out["wall_query_ms_after_ingest"]
    out["summary"] = {
        "exact_after_fill": all(v["equal"] for v in out["exact_after_fill"].values()),
        "late_events_visible_at_once": fresh["events_3h_late"]["visible_at_once"],
        "rollup_cost_us_per_event": round(
            ing["writer_with_rollups"]["median"] - ing["raw_only_no_cagg"]["median"], 2
        ),
        "cagg_invalidation_cost_us_per_event": round(
            ing["raw_only_cagg_table"]["median"] - ing["raw_only_no_cagg"]["median"], 2
        ),
        "hourly_refresh_us_per_event": out["hourly_refresh"]["us_per_event"],
        "tail_rows": out["tail_rows"],
        "wall_today_p95_ms": {s: qt[f"today:{s}"]["p95_ms"] for s in sources},
        "wall_7d_p95_ms": {s: qt[f"last_7d:{s}"]["p95_ms"] for s in sources},
        "tail_rows_after_ingest": out["tail_rows_after_ingest"],
        "wall_today_p95_ms_after_ingest": {s: qa[f"today:{s}"]["p95_ms"] for s in sources},
    }
    return out


def timings(conn: psycopg.Connection[Any], sources: Sequence[str]) -> dict[str, Any]:
    qt: dict[str, Any] = {}
    for wname in ("today", "last_7d"):
        for s in sources:
            ms = []
            for _ in range(30):
                now = datetime.now(UTC)
                w = Window.today(now) if wname == "today" else Window.last(24 * 7, now)
                t0 = time.perf_counter()
                wall_query(conn, s, w)
                ms.append((time.perf_counter() - t0) * 1000.0)
            qt[f"{wname}:{s}"] = _stats(ms[3:])
    return qt


def tail_rows(conn: psycopg.Connection[Any], watermark: datetime) -> dict[str, int]:
    """Raw payments past each aggregate's watermark: what its real-time part aggregates."""
    out = {}
    for name, mark in (("cagg_1h", watermark), ("cagg_6h", watermark - 5 * HOUR)):
        row = conn.execute(
            "SELECT count(*) FROM payment_events WHERE event_time >= %(m)s", {"m": mark}
        ).fetchone()
        out[name] = int(row[0]) if row else 0
    return out


def _in_tx(conn: psycopg.Connection[Any], fn: Callable[[], object]) -> None:
    with conn.transaction():
        fn()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
