"""TimescaleDB on the real server: the engine this run names, its policies, and redelivery into
compressed chunks. Under IOC_TEST_DATABASE=ioc_plain the same tests prove the plain path."""

from __future__ import annotations

import os

import psycopg
import pytest
from psycopg import sql

from ioc.db.migrate import migrate
from ioc.services.state import PLAIN_DATABASE
from tests.integration.conftest import suite_database
from tests.support.direct_writes import decoded_stream, write_batches
from tests.support.ingest_run import RAW_TABLES, snapshot

RAW = tuple(RAW_TABLES.values())
FEEDS = ("dossiers", "payments", "feedback", "air_quality")


def _expect_timescaledb(admin_url: str) -> bool:
    """TimescaleDB in database ioc when the server offers it, and always in CI; never in plain."""
    if suite_database() == PLAIN_DATABASE:
        return False
    with psycopg.connect(admin_url) as conn:
        offered = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    if offered is None and os.environ.get("CI"):
        pytest.fail("CI runs on TimescaleDB, and this server lacks it: run make setup")
    return offered is not None


def _hypertables(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> set[str]:
    has_ts = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if has_ts is None:
        return set()
    rows = conn.execute(
        "SELECT hypertable_name FROM timescaledb_information.hypertables "
        "WHERE hypertable_schema = %(s)s",
        {"s": schema},
    ).fetchall()
    return {str(r[0]) for r in rows}


def test_migrate_uses_the_engine_this_run_names(pg_admin_url: str, pg_schema: str) -> None:
    expected = _expect_timescaledb(pg_admin_url)
    assert migrate(pg_admin_url, schema=pg_schema).timescaledb is expected
    with psycopg.connect(pg_admin_url) as conn:
        assert _hypertables(conn, pg_schema) == (set(RAW) if expected else set())


def test_raw_tables_compress_by_ward_and_expire(pg_admin_url: str, pg_schema: str) -> None:
    if not _expect_timescaledb(pg_admin_url):
        # The plain path has no policies to check; the migration above proved it plain.
        assert migrate(pg_admin_url, schema=pg_schema).timescaledb is False
        return
    migrate(pg_admin_url, schema=pg_schema)
    with psycopg.connect(pg_admin_url) as conn:
        settings = conn.execute(
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, "
            "orderby_asc FROM timescaledb_information.compression_settings "
            "WHERE hypertable_schema = %(s)s ORDER BY 1, 2",
            {"s": pg_schema},
        ).fetchall()
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name, config->>'compress_after', config->>'drop_after' "
            "FROM timescaledb_information.jobs WHERE hypertable_schema = %(s)s ORDER BY 1, 2",
            {"s": pg_schema},
        ).fetchall()
    for table in RAW:
        mine = [r for r in settings if r[0] == table]
        assert ("ward_code", 1) in {(str(r[1]), r[2]) for r in mine}, table
        assert [(str(r[1]), r[4]) for r in mine if r[3] == 1] == [("event_time", False)], table
        procs = {str(r[1]): (r[2], r[3]) for r in jobs if r[0] == table}
        assert procs["policy_compression"][0] == "7 days", table
        assert procs["policy_retention"][1] == "400 days", table


def _compress_all(url: str, schema: str) -> int:
    n = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for table in RAW:
            rows = conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%(t)s) c",
                {"t": f"{schema}.{table}"},
            ).fetchall()
            n += len(rows)
    return n


def _compressed_rows(url: str, schema: str) -> int:
    """Raw rows held in compressed chunks: what the redelivery below must land on."""
    total = 0
    with psycopg.connect(url) as conn:
        for table in RAW:
            row = conn.execute(
                "SELECT count(*) FROM timescaledb_information.chunks WHERE is_compressed "
                "AND hypertable_schema = %(s)s AND hypertable_name = %(t)s",
                {"s": schema, "t": table},
            ).fetchone()
            if row and int(row[0]):
                q = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
                counted = conn.execute(q).fetchone()
                total += int(counted[0]) if counted else 0
    return total


def test_a_replay_into_compressed_chunks_changes_nothing(pg_admin_url: str, pg_schema: str) -> None:
    events = decoded_stream(FEEDS, seed=23, days=10, limit=40_000)
    timescale = migrate(pg_admin_url, schema=pg_schema).timescaledb
    batches = [events[i : i + 2_000] for i in range(0, len(events), 2_000)]
    first = write_batches(pg_admin_url, pg_schema, batches)
    assert (first.inserted, first.dead) == (len(events), 0)
    if timescale:
        assert _compress_all(pg_admin_url, pg_schema) > 0
        assert _compressed_rows(pg_admin_url, pg_schema) > len(events) // 2
    before = snapshot(pg_admin_url, pg_schema)
    for _ in range(2):
        again = write_batches(pg_admin_url, pg_schema, batches)
        assert (again.inserted, again.dead) == (0, 0)
        assert snapshot(pg_admin_url, pg_schema) == before
