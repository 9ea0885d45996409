"""Storage and compression of the raw event tables, and the compression layout chosen by the
product's reads of raw rows.

python -m bench.timescale storage [--events 10000000 | --schema NAME]: a history of N simulated
events (about 130,000 a day, ending now) is written through the feed writers into a schema of
database ioc (or an existing filled schema is used, e.g. the one `python -m bench.dashboard
--keep` leaves). Its raw rows are then copied, as they are, into:
  plain      a migrated schema of database ioc_plain (binary COPY out of one database, into the
             other): plain tables with the same keys and indexes;
  layouts    migrated schemas of database ioc (INSERT ... SELECT), one per compression layout,
             whose chunks are all compressed with compress_chunk; before compressing, the first
             gives the size of the uncompressed hypertables.
Policies are paused in every scratch schema so that no background job changes what is measured.
Bytes per raw event are pg_total_relation_size (plain) or hypertable_size (heap, indexes, TOAST
and compressed chunks) over the rows. On each layout, compressed, the product's reads of raw rows
are timed: the case writer's history load (all events of ~250 cases, by dossier_id / report_id,
as each ingest batch of a case feed does), a redelivered payments batch landing on compressed
chunks (PaymentWriter, rolled back), and a ward's raw payments for one day (an ad-hoc export;
no dashboard query reads raw rows).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from bench.machine import describe
from bench.timescale import (
    RAW_TABLES,
    drop_schema,
    fresh_schema,
    in_database,
    log,
    services,
    write_results,
)
from ioc.core.contracts import PaymentEvent
from streams.ingest.writers.base import Accepted
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord

CASE_ID = {"dossier_events": "dossier_id", "feedback_events": "report_id"}
# Layouts tried: name -> table -> (segmentby, orderby). `ward_time` is sql/009's.
LAYOUTS: dict[str, dict[str, tuple[str, str]]] = {
    "ward_time": {t: ("ward_code", "event_time DESC") for t in RAW_TABLES},
    "ward_case": {
        "dossier_events": ("ward_code", "dossier_id, event_time"),
        "feedback_events": ("ward_code", "report_id, event_time"),
    },
    "none_time": {t: ("", "event_time DESC") for t in RAW_TABLES},
}


def _say(line: str) -> None:
    log("storage", line)


def connect(url: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    return conn


def pause_policies(conn: psycopg.Connection[Any], schema: str) -> int:
    rows = conn.execute(
        "SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
        "WHERE hypertable_schema = %(s)s",
        {"s": schema},
    ).fetchall()
    return len(rows)


def counts(conn: psycopg.Connection[Any], schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for t in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, t))
        ).fetchone()
        out[t] = int(row[0]) if row else 0
    return out


def sizes(conn: psycopg.Connection[Any], schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    hyper = (
        {
            str(r[0])
            for r in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables "
                "WHERE hypertable_schema = %(s)s",
                {"s": schema},
            ).fetchall()
        }
        if _has_ts(conn)
        else set()
    )
    out = {}
    for t in tables:
        fn = "hypertable_size" if t in hyper else "pg_total_relation_size"
        row = conn.execute(f"SELECT {fn}(%(t)s::regclass)", {"t": f"{schema}.{t}"}).fetchone()
        out[t] = int(row[0]) if row and row[0] is not None else 0
    return out


def _has_ts(conn: psycopg.Connection[Any]) -> bool:
    found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return found.fetchone() is not None


def copy_across(src_url: str, src: str, dst_url: str, dst: str, table: str) -> float:
    """Binary COPY of one raw table from one database's schema into another's."""
    t0 = time.perf_counter()
    # COPY of a hypertable itself copies only its (empty) parent: select from it instead.
    q_out = sql.SQL("COPY (SELECT * FROM {}) TO STDOUT (FORMAT BINARY)").format(
        sql.Identifier(src, table)
    )
    q_in = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(dst, table))
    with psycopg.connect(src_url) as a, psycopg.connect(dst_url) as b:
        with a.cursor().copy(q_out) as out, b.cursor().copy(q_in) as into:
            for chunk in out:
                into.write(chunk)
        b.commit()
    return time.perf_counter() - t0


def copy_within(conn: psycopg.Connection[Any], src: str, dst: str, table: str) -> float:
    t0 = time.perf_counter()
    conn.execute(
        sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
            sql.Identifier(dst, table), sql.Identifier(src, table)
        )
    )
    return time.perf_counter() - t0


def set_layout(
    conn: psycopg.Connection[Any], schema: str, table: str, layout: tuple[str, str]
) -> None:
    segment, order = layout
    conn.execute(
        sql.SQL(
            "ALTER TABLE {} SET (timescaledb.compress, timescaledb.compress_segmentby = {}, "
            "timescaledb.compress_orderby = {})"
        ).format(sql.Identifier(schema, table), sql.Literal(segment), sql.Literal(order))
    )


def compress_all(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    rows = conn.execute(
        "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%(t)s::regclass) c",
        {"t": f"{schema}.{table}"},
    ).fetchall()
    return len(rows), time.perf_counter() - t0


def _stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "n": len(ordered),
    }


def _time(fn: Callable[[], object], n: int) -> dict[str, float]:
    fn()  # warm the plan and the cache once
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000.0)
    return _stats(ms)


class Probes:
    """Inputs for the raw-row reads, drawn once from the source so every layout gets the same."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, rng: random.Random) -> None:
        old = datetime.now(UTC) - timedelta(days=9)  # inside chunks that are compressed
        last = conn.execute(
            sql.SQL("SELECT max(event_time) FROM {}").format(
                sql.Identifier(schema, "dossier_events")
            )
        ).fetchone()
        self.end = last[0] if last and last[0] else datetime.now(UTC)
        self.case_ids: dict[str, list[list[str]]] = {}
        self.recent: dict[str, list[tuple[list[str], datetime]]] = {}
        for table, col in CASE_ID.items():
            ids = [
                str(r[0])
                for r in conn.execute(
                    sql.SQL("SELECT DISTINCT {c} FROM {t} WHERE event_time < %(old)s").format(
                        c=sql.Identifier(col), t=sql.Identifier(schema, table)
                    ),
                    {"old": old},
                ).fetchall()
            ]
            rng.shuffle(ids)
            self.case_ids[table] = [ids[i * 250 : (i + 1) * 250] for i in range(12)]
            # As an ingest batch meets them: the cases with an event in one of the last 12 hours
            # of the history, and the earliest event of any of them (what a bound on the
            # history read could use, e.g. the case tables' first_event_at).
            self.recent[table] = []
            for h in range(12):
                rows = conn.execute(
                    sql.SQL(
                        "WITH ids AS (SELECT DISTINCT {c} AS id FROM {t} "
                        "WHERE event_time >= %(end)s - (%(h)s + 1) * interval '1 hour' "
                        "AND event_time < %(end)s - %(h)s * interval '1 hour' LIMIT 250) "
                        "SELECT array_agg(DISTINCT id), min(e.event_time) FROM ids "
                        "JOIN {t} AS e ON e.{c} = ids.id"
                    ).format(c=sql.Identifier(col), t=sql.Identifier(schema, table)),
                    {"end": self.end, "h": h},
                ).fetchone()
                if rows and rows[0]:
                    self.recent[table].append((list(rows[0]), rows[1]))
        day = conn.execute(
            sql.SQL("SELECT min(event_time) FROM {}").format(
                sql.Identifier(schema, "payment_events")
            )
        ).fetchone()
        first = day[0] if day and day[0] else old - timedelta(days=30)
        span = max(1, (old - first).days - 1)
        wards = [
            str(r[0])
            for r in conn.execute(
                sql.SQL("SELECT DISTINCT ward_code FROM {}").format(
                    sql.Identifier(schema, "payment_events")
                )
            ).fetchall()
        ]
        self.ward_days = [
            (rng.choice(wards), first + timedelta(days=1 + rng.randrange(span))) for _ in range(12)
        ]
        # A redelivered batch: 2,000 stored payments from one old hour.
        hour = first + timedelta(days=1 + span // 2)
        self.redelivered = [
            Accepted(
                SourceRecord("ioc.payments.v1", 0, i, None, b"", 0),
                PaymentEvent(
                    event_id=r[0],
                    event_time=r[1],
                    ward_code=r[2],
                    payment_id=r[3],
                    merchant_id=r[4],
                    merchant_type=r[5],
                    channel=r[6],
                    amount_vnd=r[7],
                    status=r[8],
                ),
            )
            for i, r in enumerate(
                conn.execute(
                    sql.SQL(
                        "SELECT event_id, event_time, ward_code, payment_id, merchant_id, "
                        "merchant_type, channel, amount_vnd, status FROM {} "
                        "WHERE event_time >= %(h)s ORDER BY event_time LIMIT 2000"
                    ).format(sql.Identifier(schema, "payment_events")),
                    {"h": hour},
                ).fetchall()
            )
        ]


def reads(conn: psycopg.Connection[Any], probes: Probes, tables: tuple[str, ...]) -> dict[str, Any]:
    """The product's raw-row reads on the schema `conn` points at."""
    out: dict[str, Any] = {}
    for table, col in CASE_ID.items():
        if table not in tables:
            continue
        q = sql.SQL("SELECT * FROM {t} WHERE {c} = ANY(%(ids)s)").format(
            t=sql.Identifier(table), c=sql.Identifier(col)
        )
        batches = iter(probes.case_ids[table] * 3)
        out[f"case_history_{table}"] = _time(
            lambda q=q, b=batches: conn.execute(q, {"ids": next(b)}).fetchall(), 10
        )
        recent = iter(probes.recent[table] * 3)
        out[f"case_history_recent_batch_{table}"] = _time(
            lambda q=q, r=recent: conn.execute(q, {"ids": next(r)[0]}).fetchall(), 10
        )
        bounded = sql.SQL("SELECT * FROM {t} WHERE {c} = ANY(%(ids)s) AND event_time >= %(since)s")
        qb = bounded.format(t=sql.Identifier(table), c=sql.Identifier(col))
        recent_b = iter(probes.recent[table] * 3)

        def read_bounded(qb: sql.Composed = qb, r: Any = recent_b) -> None:
            ids, since = next(r)
            conn.execute(qb, {"ids": ids, "since": since}).fetchall()

        out[f"case_history_recent_batch_bounded_{table}"] = _time(read_bounded, 10)
    if "payment_events" in tables:
        writer = WRITERS["payments"]

        def redeliver() -> None:
            with conn.transaction(force_rollback=True):
                result = writer.write(conn, probes.redelivered)
                if result.inserted:
                    raise RuntimeError("a redelivered payment was stored twice")

        out["redelivered_payments_2000"] = _time(redeliver, 5)
        q = sql.SQL(
            "SELECT * FROM payment_events WHERE ward_code = %(w)s AND event_time >= %(d)s "
            "AND event_time < %(d)s + interval '1 day'"
        )
        days = iter(probes.ward_days * 3)

        def ward_day() -> None:
            w, d = next(days)
            conn.execute(q, {"w": w, "d": d}).fetchall()

        out["ward_day_payments"] = _time(ward_day, 10)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timescale storage", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--schema", help="an existing filled schema of database ioc to read")
    parser.add_argument("--keep", action="store_true", help="keep the scratch schemas")
    args = parser.parse_args(argv)
    info = services()
    admin = str(info.admin_url)
    plain_admin = in_database(admin, "ioc_plain")
    made: list[tuple[str, str]] = []
    source = args.schema
    fill_s = None
    if source is None:
        from bench.dashboard import fill

        source = f"bench_tss_src_{args.events}"
        made.append((admin, source))
        _say(f"filling {source} with {args.events:,} events through the writers")
        t0 = time.perf_counter()
        fill(admin, source, args.events)
        fill_s = round(time.perf_counter() - t0, 1)
    rng = random.Random(2026)  # noqa: S311 - a reproducible sample, not a secret
    result: dict[str, Any] = {
        "benchmark": "timescale_storage",
        "machine": describe(),
        "command": "python -m bench.timescale storage " + " ".join(argv),
    }
    try:
        with connect(admin, source) as conn:
            pause_policies(conn, source)
            src_counts = counts(conn, source, RAW_TABLES)
            chunks = conn.execute(
                "SELECT hypertable_name, count(*), count(*) FILTER (WHERE is_compressed) "
                "FROM timescaledb_information.chunks WHERE hypertable_schema = %(s)s GROUP BY 1",
                {"s": source},
            ).fetchall()
            probes = Probes(conn, source, rng)
        total = sum(src_counts.values())
        result["source"] = {
            "schema": source,
            "rows": src_counts,
            "events": total,
            "fill_seconds": fill_s,
            "chunks": {str(r[0]): {"chunks": r[1], "compressed": r[2]} for r in chunks},
        }
        _say(f"source {source}: {src_counts}")

        # Plain tables, in the database that never has TimescaleDB.
        plain = fresh_schema(plain_admin, "bench_tss_plain")
        made.append((plain_admin, plain))
        copy_s = {
            t: round(copy_across(admin, source, plain_admin, plain, t), 1) for t in RAW_TABLES
        }
        with connect(plain_admin, plain) as conn:
            conn.execute("ANALYZE")
            plain_sizes = sizes(conn, plain, RAW_TABLES)
            plain_reads = reads(conn, probes, RAW_TABLES)
        result["plain"] = {
            "copy_seconds": copy_s,
            "bytes": plain_sizes,
            "bytes_per_event": _per_event(plain_sizes, src_counts),
            "reads": plain_reads,
        }
        _say(f"plain: {result['plain']}")

        layouts: dict[str, Any] = {}
        for name, tables_layout in LAYOUTS.items():
            tables = tuple(tables_layout)
            schema = fresh_schema(admin, f"bench_tss_{name}")
            made.append((admin, schema))
            with connect(admin, schema) as conn:
                pause_policies(conn, schema)
                copied = {t: round(copy_within(conn, source, schema, t), 1) for t in tables}
                conn.execute("ANALYZE")
                entry: dict[str, Any] = {
                    "layout": {
                        t: {"segmentby": s, "orderby": o} for t, (s, o) in tables_layout.items()
                    },
                    "copy_seconds": copied,
                }
                if name == "ward_time":
                    before = sizes(conn, schema, tables)
                    result["hypertables"] = {
                        "bytes": before,
                        "bytes_per_event": _per_event(before, src_counts),
                        "reads": reads(conn, probes, tables),
                    }
                    _say(f"hypertables: {result['hypertables']}")
                compress: dict[str, Any] = {}
                for t in tables:
                    set_layout(conn, schema, t, tables_layout[t])
                    n, secs = compress_all(conn, schema, t)
                    compress[t] = {"chunks": n, "seconds": round(secs, 1)}
                conn.execute("ANALYZE")
                after = sizes(conn, schema, tables)
                entry["compress"] = compress
                entry["bytes"] = after
                entry["bytes_per_event"] = _per_event(after, src_counts)
                entry["ratio_vs_uncompressed_hypertable"] = {
                    t: round(result["hypertables"]["bytes"][t] / after[t], 2) for t in tables
                }
                entry["sparse_indexes"] = {
                    str(r[0]).rsplit(".", 1)[-1]: r[1]
                    for r in conn.execute(
                        "SELECT DISTINCT ON (hypertable) hypertable::text, index "
                        "FROM timescaledb_information.chunk_compression_settings "
                        "WHERE hypertable = ANY(%(h)s::regclass[])",
                        {"h": [f"{schema}.{t}" for t in tables]},
                    ).fetchall()
                }
                entry["reads"] = reads(conn, probes, tables)
            layouts[name] = entry
            _say(f"layout {name}: {json.dumps(entry)[:600]}")
        result["compressed_layouts"] = layouts
    finally:
        if not args.keep:
            for url, schema in made:
                drop_schema(url, schema)
    ht = result["hypertables"]["bytes_per_event"]["all"]
    result["summary"] = {
        "events": total,
        "bytes_per_event": {
            "plain": result["plain"]["bytes_per_event"]["all"],
            "hypertables": ht,
            "compressed_ward_time": layouts["ward_time"]["bytes_per_event"]["all"],
            "compressed_none_time": layouts["none_time"]["bytes_per_event"]["all"],
        },
        "compression_ratio_ward_time": round(
            ht / layouts["ward_time"]["bytes_per_event"]["all"], 2
        ),
    }
    result["notes"] = [
        "bytes: pg_total_relation_size for plain tables, hypertable_size for hypertables "
        "(all chunks, their indexes and TOAST; compressed chunks included).",
        "ward_case compresses only the case tables (payments and air quality as ward_time).",
        "reads: p50/p95 ms of each read on the schema as it stands (plain, uncompressed "
        "hypertables, or every chunk compressed); case_history reads 250 cases whose events are "
        "older than 9 days (the case writer's query); case_history_recent_batch the cases with "
        "an event in one of the history's last 12 hours (up to 250), as an ingest batch meets "
        "them; _bounded adds event_time >= the earliest event of those cases (a bound the case "
        "tables could give: not what the product does today); redelivered_payments_2000 is "
        "PaymentWriter.write of 2,000 stored payments (all duplicates), rolled back; "
        "ward_day_payments reads one ward's payments of one old day.",
    ]
    path = write_results("timescale_storage.json", result)
    _say(f"results in {path}")
    print(json.dumps(result["summary"]))
    return 0


def _per_event(size: dict[str, int], rows: dict[str, int]) -> dict[str, float]:
    out = {t: round(size[t] / rows[t], 1) for t in size if rows.get(t)}
    n = sum(rows[t] for t in size)
    out["all"] = round(sum(size.values()) / n, 1) if n else 0.0
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
