"""Migrations on the real PostgreSQL server: order, idempotence, round trips, least privilege."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.db.migrate import MigrationError, discover, migrate

RAW_TABLES = ("dossier_events", "payment_events", "feedback_events", "air_quality_readings")


def _catalog(url: str, schema: str) -> list[tuple[object, ...]]:
    """Every column and index of the schema: what a second run must leave unchanged."""
    with psycopg.connect(url) as conn:
        cols = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %(s)s "
            "ORDER BY table_name, ordinal_position",
            {"s": schema},
        ).fetchall()
        idx = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s ORDER BY 1",
            {"s": schema},
        ).fetchall()
        recs = conn.execute(
            sql.SQL("SELECT version, name, checksum, applied_at FROM {}.schema_migrations").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    return [*cols, *idx, *recs]


def test_migrate_twice_changes_nothing_the_second_time(pg_admin_url: str, pg_schema: str) -> None:
    first = migrate(pg_admin_url, schema=pg_schema)
    files = discover(Path(__file__).resolve().parents[2] / "sql")
    assert first.applied == tuple(m.version for m in files)
    before = _catalog(pg_admin_url, pg_schema)
    second = migrate(pg_admin_url, schema=pg_schema)
    assert second.applied == ()
    assert second.skipped == first.applied
    assert _catalog(pg_admin_url, pg_schema) == before
    tables = {str(r[0]) for r in before if len(r) == 5}
    assert set(RAW_TABLES) | {"dead_letters", "schema_migrations"} <= tables


def test_edited_migration_is_refused(pg_admin_url: str, pg_schema: str, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE a (x int);\n")
    assert migrate(pg_admin_url, schema=pg_schema, sql_dir=tmp_path).applied == (1,)
    (tmp_path / "001_first.sql").write_text("CREATE TABLE a (x bigint);\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(pg_admin_url, schema=pg_schema, sql_dir=tmp_path)


def test_failed_migration_rolls_back_and_records_nothing(
    pg_admin_url: str, pg_schema: str, tmp_path: Path
) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE ok (x int);\n")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE half (x int);\nSELECT no_such_fn();\n")
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
        migrate(pg_admin_url, schema=pg_schema, sql_dir=tmp_path)
    with psycopg.connect(pg_admin_url) as conn:
        names = {
            str(r[0])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %(s)s",
                {"s": pg_schema},
            )
        }
    # The whole runner is one transaction around the lock: nothing of the failed set remains.
    assert "half" not in names
    assert "ok" not in names


def test_rows_round_trip_and_duplicates_are_absorbed(pg_admin_url: str, pg_schema: str) -> None:
    migrate(pg_admin_url, schema=pg_schema)
    t0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    rows = [
        (
            f"pay-{i}",
            t0 + timedelta(seconds=i),
            "06649",
            f"p{i}",
            f"m{i % 7}",
            "shop",
            "vietqr" if i % 3 else "cash",
            10_000 * (i + 1),
            "succeeded",
        )
        for i in range(50)
    ]
    insert = sql.SQL(
        "INSERT INTO {}.payment_events (event_id, event_time, ward_code, payment_id, merchant_id,"
        " merchant_type, channel, amount_vnd, status) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
        " ON CONFLICT (event_id, event_time) DO NOTHING"
    ).format(sql.Identifier(pg_schema))
    with psycopg.connect(pg_admin_url) as conn:
        with conn.cursor() as cur:
            cur.executemany(insert, rows)
            cur.executemany(insert, rows[:10])  # redelivery
        back = conn.execute(
            sql.SQL(
                "SELECT event_id, event_time, ward_code, payment_id, merchant_id, merchant_type,"
                " channel, amount_vnd, status FROM {}.payment_events ORDER BY event_time"
            ).format(sql.Identifier(pg_schema))
        ).fetchall()
    assert back == rows


def test_roles_get_least_privilege(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str
) -> None:
    migrate(pg_admin_url, schema=pg_schema)
    assert services.reader_url and services.writer_url
    insert = sql.SQL(
        "INSERT INTO {}.dead_letters (topic, raw, reason) VALUES ('t', '\\x00', 'not_json')"
    ).format(sql.Identifier(pg_schema))
    with psycopg.connect(services.writer_url) as conn:
        conn.execute(insert)
    with psycopg.connect(services.reader_url) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.dead_letters").format(sql.Identifier(pg_schema))
        ).fetchone()
        assert count == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(insert)
