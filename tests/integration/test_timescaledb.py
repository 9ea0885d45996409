"""TimescaleDB on the real server: the engine this run names, its policies, and redelivery into
compressed chunks. Under IOC_TEST_DATABASE=ioc_plain the same tests prove the plain path."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ioc.app.services.state import PLAIN_DATABASE
from ioc.core.db.migrate import MigrationError, migrate
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


def _policies(
    url: str, schema: str
) -> tuple[list[tuple[object, ...]], dict[str, dict[str, tuple[object, ...]]]]:
    with psycopg.connect(url) as conn:
        settings = conn.execute(
            "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, "
            "orderby_asc FROM timescaledb_information.compression_settings "
            "WHERE hypertable_schema = %(s)s ORDER BY 1, 2",
            {"s": schema},
        ).fetchall()
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name, config->>'compress_after', config->>'drop_after' "
            "FROM timescaledb_information.jobs WHERE hypertable_schema = %(s)s ORDER BY 1, 2",
            {"s": schema},
        ).fetchall()
    by_table: dict[str, dict[str, tuple[object, ...]]] = {}
    for table, proc, compress_after, drop_after in jobs:
        by_table.setdefault(str(table), {})[str(proc)] = (compress_after, drop_after)
    return settings, by_table


def test_raw_tables_compress_by_ward_and_expire_as_configured(
    pg_admin_url: str, pg_schema: str, second_schema: str
) -> None:
    if not _expect_timescaledb(pg_admin_url):
        # The plain path has no policies to check; the migration above proved it plain.
        assert migrate(pg_admin_url, schema=pg_schema).timescaledb is False
        return
    # The dev database keeps history (ioc.raw_retention = off); a deployment sets its own.
    migrate(pg_admin_url, schema=pg_schema)
    migrate(make_conninfo(pg_admin_url, options="-c ioc.raw_retention=90d"), schema=second_schema)
    settings, jobs = _policies(pg_admin_url, pg_schema)
    _, configured = _policies(pg_admin_url, second_schema)
    for table in RAW:
        mine = [r for r in settings if r[0] == table]
        assert ("ward_code", 1) in {(str(r[1]), r[2]) for r in mine}, table
        assert [(str(r[1]), r[4]) for r in mine if r[3] == 1] == [("event_time", False)], table
        assert jobs[table]["policy_compression"][0] == "7 days", table
        assert "policy_retention" not in jobs[table], table
        assert configured[table]["policy_retention"][1] == "90 days", table


def test_a_bad_retention_setting_is_refused(pg_admin_url: str, pg_schema: str) -> None:
    if not _expect_timescaledb(pg_admin_url):
        return  # sql/011 does nothing without TimescaleDB, whatever the setting says
    with pytest.raises(MigrationError, match=r"ioc\.raw_retention = soon"):
        migrate(make_conninfo(pg_admin_url, options="-c ioc.raw_retention=soon"), schema=pg_schema)


def test_retention_drops_only_chunks_past_the_horizon(pg_admin_url: str, pg_schema: str) -> None:
    url = make_conninfo(pg_admin_url, options="-c ioc.raw_retention=4d")
    timescale = migrate(url, schema=pg_schema).timescaledb
    # Air quality: a modest hourly feed, so 20 whole days fit and reach up to the last hour.
    events = decoded_stream(("air_quality",), seed=29, days=20, limit=1_000_000)
    write_batches(pg_admin_url, pg_schema, [events])
    table = sql.Identifier(pg_schema, "air_quality_readings")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        oldest = conn.execute(sql.SQL("SELECT min(event_time) FROM {}").format(table)).fetchone()
        if timescale:
            for (job,) in conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_schema = %(s)s"
                " AND proc_name = 'policy_retention'",
                {"s": pg_schema},
            ).fetchall():
                conn.execute("CALL run_job(%(j)s)", {"j": job})
        left = conn.execute(
            sql.SQL("SELECT min(event_time), count(*) FROM {}").format(table)
        ).fetchone()
    assert oldest is not None and left is not None
    horizon = datetime.now(UTC) - timedelta(days=4)
    newest_kept = sum(1 for a in events if a.event.event_time >= horizon)
    if timescale:
        # Whole chunks (7 days each) go once all their rows are past 4 days: the oldest does.
        assert left[0] > oldest[0]
        assert newest_kept <= int(left[1]) < len(events)
    else:
        assert (left[0], int(left[1])) == (oldest[0], len(events))


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


SINGLE_TIME_INDEXES = """
SELECT c.relname, i.indexrelid::regclass::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = %(s)s AND c.relname = ANY(%(t)s) AND i.indnkeyatts = 1
  AND a.attname = 'event_time'
"""


def _single_time_indexes(url: str, schema: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(SINGLE_TIME_INDEXES, {"s": schema, "t": list(RAW)}).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def test_raw_tables_have_no_index_on_time_alone(pg_admin_url: str, pg_schema: str) -> None:
    # create_hypertable's default index costs every insert a b-tree and nothing reads it
    # (sql/012); the plain path never had one.
    migrate(pg_admin_url, schema=pg_schema)
    assert _single_time_indexes(pg_admin_url, pg_schema) == []


def test_time_index_dropped_under_compressed_chunks(pg_admin_url: str, pg_schema: str) -> None:
    if not migrate(pg_admin_url, schema=pg_schema, target=11).timescaledb:
        assert migrate(pg_admin_url, schema=pg_schema).timescaledb is False
        return
    # Before sql/012: TimescaleDB's own index on event_time, on chunks some of them compressed.
    assert len(_single_time_indexes(pg_admin_url, pg_schema)) == len(RAW)
    events = decoded_stream(FEEDS, seed=29, days=10, limit=20_000)
    batches = [events[i : i + 2_000] for i in range(0, len(events), 2_000)]
    assert write_batches(pg_admin_url, pg_schema, batches).inserted == len(events)
    assert _compress_all(pg_admin_url, pg_schema) > 0
    before = snapshot(pg_admin_url, pg_schema)
    assert 12 in migrate(pg_admin_url, schema=pg_schema).applied
    assert _single_time_indexes(pg_admin_url, pg_schema) == []
    assert snapshot(pg_admin_url, pg_schema) == before
    again = write_batches(pg_admin_url, pg_schema, batches)
    assert (again.inserted, again.dead) == (0, 0)
    assert snapshot(pg_admin_url, pg_schema) == before
