"""The retention and compression policies of sql/009 (and 011), run for real on a scratch schema.

python -m bench.timescale retention: a migrated schema of database ioc gets synthetic raw rows of
all four feeds every 6 hours from 430 days ago to now (and matching hourly payment rollup rows).
Then payment_events' policies are left to TimescaleDB's own background scheduler (their next
start moved to now), and the other tables' policies are run with run_job. Checked: every chunk
that ended more than 400 days ago is gone and no other; rows older than the cut-off remain only
inside the chunk that straddles it; every chunk that ended more than 7 days ago is compressed and
the newer ones are not; the rollups keep their whole history.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import psycopg
from psycopg import sql

from bench.machine import describe
from bench.timescale import RAW_TABLES, drop_schema, fresh_schema, log, services, write_results
from bench.ts_storage import connect

# Rows every 6 hours from 430 days ago to a minute ago (one ward, constant values).
FILL = {
    "payment_events": """
INSERT INTO payment_events (event_id, event_time, ward_code, payment_id, merchant_id,
                            merchant_type, channel, amount_vnd, status)
SELECT 'r-' || extract(epoch FROM t), t, '06658', 'P' || extract(epoch FROM t), 'M1', 'shop',
       'vietqr', 10000, 'succeeded'
FROM generate_series(now() - interval '430 days', now() - interval '1 minute',
                     interval '6 hours') AS t""",
    "air_quality_readings": """
INSERT INTO air_quality_readings (event_id, event_time, ward_code, station_id, period_minutes,
                                  pm25)
SELECT 'r-' || extract(epoch FROM t), t, '06658', 'S1', 60, 12.5
FROM generate_series(now() - interval '430 days', now() - interval '1 minute',
                     interval '6 hours') AS t""",
    "dossier_events": """
INSERT INTO dossier_events (event_id, event_time, ward_code, dossier_id, kind, procedure_field,
                            channel, service_level, received_at, due_at, digitized, e_signed,
                            fee_vnd)
SELECT 'r-' || extract(epoch FROM t), t, '06658', 'D' || extract(epoch FROM t), 'received',
       'ho_tich', 'online', 'full_online', t, t + interval '3 days', true, false, 0
FROM generate_series(now() - interval '430 days', now() - interval '1 minute',
                     interval '6 hours') AS t""",
    "feedback_events": """
INSERT INTO feedback_events (event_id, event_time, ward_code, report_id, kind, category,
                             urgency, channel, lat, lon, submitted_at, due_at)
SELECT 'r-' || extract(epoch FROM t), t, '06658', 'F' || extract(epoch FROM t), 'submitted',
       'environment', 'normal', 'app', 20.95, 107.07, t, t + interval '5 days'
FROM generate_series(now() - interval '430 days', now() - interval '1 minute',
                     interval '6 hours') AS t""",
}
ROLLUP = """
INSERT INTO payment_stats_hourly (ward_code, bucket, transactions, amount_vnd)
SELECT '06658', date_trunc('hour', t), 1, 10000
FROM generate_series(now() - interval '430 days', now() - interval '1 minute',
                     interval '6 hours') AS t
ON CONFLICT DO NOTHING"""
CHUNKS = """
SELECT hypertable_name, range_start, range_end, is_compressed
FROM timescaledb_information.chunks WHERE hypertable_schema = %(s)s
ORDER BY hypertable_name, range_start"""


def _say(line: str) -> None:
    log("retention", line)


def chunk_state(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in RAW_TABLES}
    for name, start, end, compressed in conn.execute(CHUNKS, {"s": schema}).fetchall():
        out[str(name)].append((start, end, bool(compressed)))
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.timescale retention", description=__doc__
    )
    parser.parse_args(argv)
    info = services()
    admin = str(info.admin_url)
    schema = fresh_schema(admin, "bench_tsr")
    result: dict[str, Any] = {
        "benchmark": "timescale_retention",
        "machine": describe(),
        "command": "python -m bench.timescale retention",
    }
    try:
        with connect(admin, schema) as conn:
            # sql/011 makes raw retention a setting (ioc.raw_retention, 'off' on a dev database):
            # where the migrations left none, the default one is added here, as 011 would.
            added = []
            for t in RAW_TABLES:
                found = conn.execute(
                    "SELECT 1 FROM timescaledb_information.jobs WHERE hypertable_schema = %(s)s "
                    "AND hypertable_name = %(t)s AND proc_name = 'policy_retention'",
                    {"s": schema, "t": t},
                ).fetchone()
                if found is None:
                    conn.execute(
                        "SELECT add_retention_policy(%(t)s::regclass, INTERVAL '400 days')",
                        {"t": f"{schema}.{t}"},
                    )
                    added.append(t)
            result["retention_policies_added_by_bench"] = added
            for t in RAW_TABLES:
                conn.execute(FILL[t])
            conn.execute(ROLLUP)
            jobs = {
                (str(r[0]), str(r[1])): int(r[2])
                for r in conn.execute(
                    "SELECT hypertable_name, proc_name, job_id FROM timescaledb_information.jobs "
                    "WHERE hypertable_schema = %(s)s",
                    {"s": schema},
                ).fetchall()
            }
            config = {
                f"{r[0]}:{r[1]}": {"schedule_interval": str(r[2]), "config": r[3]}
                for r in conn.execute(
                    "SELECT hypertable_name, proc_name, schedule_interval, config "
                    "FROM timescaledb_information.jobs WHERE hypertable_schema = %(s)s",
                    {"s": schema},
                ).fetchall()
            }
            before = chunk_state(conn, schema)
            rows_before = _rows(conn, schema)
            rollup_before = _one(conn, "SELECT count(*) FROM payment_stats_hourly")
            cutoff_row = conn.execute(
                "SELECT now() - interval '400 days', now() - interval '7 days'"
            ).fetchone()
            assert cutoff_row is not None  # noqa: S101
            drop_cut, compress_cut = cutoff_row
            # payment_events: the background scheduler, as in production.
            pay_jobs = [
                jobs[("payment_events", p)] for p in ("policy_retention", "policy_compression")
            ]
            runs_q = (
                "SELECT coalesce(sum(total_runs), 0) FROM timescaledb_information.job_stats "
                "WHERE job_id = ANY(%(j)s) AND job_status <> 'Running'"
            )
            runs_before = _one(conn, runs_q, {"j": pay_jobs})
            t0 = time.monotonic()
            for job in pay_jobs:
                conn.execute("SELECT alter_job(%(j)s, next_start => now())", {"j": job})
            waited = None
            while time.monotonic() - t0 < 180:
                if _one(conn, runs_q, {"j": pay_jobs}) >= runs_before + 2:
                    waited = round(time.monotonic() - t0, 1)
                    break
                time.sleep(1)
            # The other tables: run_job (in this session), retention first.
            ran: dict[str, float] = {}
            for t in RAW_TABLES:
                if t == "payment_events":
                    continue
                for proc in ("policy_retention", "policy_compression"):
                    t1 = time.perf_counter()
                    conn.execute("CALL run_job(%(j)s)", {"j": jobs[(t, proc)]})
                    ran[f"{t}:{proc}"] = round(time.perf_counter() - t1, 2)
            stats = {
                f"{r[0]}": {"status": r[1], "runs": r[2], "successes": r[3]}
                for r in conn.execute(
                    "SELECT job_id, last_run_status, total_runs, total_successes "
                    "FROM timescaledb_information.job_stats WHERE job_id = ANY(%(j)s)",
                    {"j": list(jobs.values())},
                ).fetchall()
            }
            errors = [
                {
                    "job_id": r[0],
                    "proc": r[1],
                    "at": r[2].isoformat(),
                    "sqlerrcode": r[3],
                    "message": r[4],
                }
                for r in conn.execute(
                    "SELECT job_id, proc_name, start_time, sqlerrcode, err_message "
                    "FROM timescaledb_information.job_errors WHERE job_id = ANY(%(j)s) "
                    "ORDER BY start_time",
                    {"j": list(jobs.values())},
                ).fetchall()
            ]
            after = chunk_state(conn, schema)
            rows_after = _rows(conn, schema)
            oldest = {
                t: conn.execute(
                    sql.SQL("SELECT min(event_time) FROM {}").format(sql.Identifier(t))
                ).fetchone()[0]  # type: ignore[index]
                for t in RAW_TABLES
            }
            rollup_after = _one(conn, "SELECT count(*) FROM payment_stats_hourly")
        checks: dict[str, Any] = {}
        per_table: dict[str, Any] = {}
        for t in RAW_TABLES:
            expect_dropped = [c for c in before[t] if c[1] <= drop_cut]
            kept = [c for c in before[t] if c[1] > drop_cut]
            kept_ranges = [(c[0], c[1]) for c in after[t]]
            should_compress = [c for c in kept if c[1] <= compress_cut]
            compressed = [c for c in after[t] if c[2]]
            per_table[t] = {
                "chunks_before": len(before[t]),
                "chunks_after": len(after[t]),
                "dropped": len(before[t]) - len(after[t]),
                "compressed": len(compressed),
                "rows_before": rows_before[t],
                "rows_after": rows_after[t],
                "oldest_after": oldest[t].isoformat() if oldest[t] else None,
            }
            checks[t] = {
                "dropped_exactly_the_chunks_ended_before_cutoff": kept_ranges
                == [(c[0], c[1]) for c in kept]
                and len(expect_dropped) > 0,
                "compressed_exactly_the_chunks_ended_7_days_ago": sorted(
                    (c[0], c[1]) for c in compressed
                )
                == sorted((c[0], c[1]) for c in should_compress),
                "oldest_row_in_straddling_chunk": bool(
                    oldest[t] and kept and kept[0][0] <= oldest[t] < kept[0][1]
                ),
            }
        result.update(
            {
                "schema_policies": config,
                "cutoffs": {
                    "drop_before": drop_cut.isoformat(),
                    "compress_before": compress_cut.isoformat(),
                },
                "background_scheduler_seconds": waited,
                "run_job_seconds": ran,
                "job_stats": stats,
                "background_job_errors": errors,
                "tables": per_table,
                "rollup_rows": {"before": rollup_before, "after": rollup_after},
                "checks": checks,
                "all_ok": all(all(v.values()) for v in checks.values())
                and waited is not None
                and rollup_after == rollup_before,
            }
        )
    finally:
        drop_schema(admin, schema)
    path = write_results("timescale_retention.json", result)
    _say(f"results in {path}")
    print(json.dumps({"all_ok": result["all_ok"], "checks": checks}, indent=2))
    return 0 if result["all_ok"] else 1


def _one(conn: psycopg.Connection[Any], q: str, params: dict[str, Any] | None = None) -> int:
    row = conn.execute(q, params).fetchone()
    return int(row[0]) if row else 0


def _rows(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    return {
        t: _one(conn, f"SELECT count(*) FROM {t}")  # noqa: S608 - our table names
        for t in RAW_TABLES
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
