"""Two `ioc ingest` members of one consumer group, joining and leaving mid-stream, end with the
same tables as one member alone; feed_health adds the members' lag and rate."""

from __future__ import annotations

import re
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ioc.app.connect import connector
from ioc.app.services.state import ConnectionInfo
from ioc.core.db.migrate import migrate
from streams.ingest.health import MEMBER_FRESH_S, FeedDelta, leave_health, write_health
from tests.support.ingest_run import (
    RAW_TABLES,
    count_raw,
    health,
    health_members,
    ingest_env,
    per_topic,
    produce,
    run_ingest_until_idle,
    simulated,
    snapshot,
    start_ingest,
    topic_prefix,
    wait_for,
)

# A weekday morning: dossiers and feedback cases open, move and close while members come and go.
START = datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
DURATION = timedelta(hours=8)


def test_two_members_joining_and_leaving_store_what_one_member_stores(
    services: ConnectionInfo,
    pg_admin_url: str,
    pg_schema: str,
    second_schema: str,
    tmp_path: Path,
) -> None:
    assert services.writer_url and services.kafka_bootstrap
    bootstrap = services.kafka_bootstrap
    messages = simulated(START, DURATION, seed=21)
    total = len(messages)
    expected = per_topic(messages)
    assert expected["ioc.dossiers.v1"] > 1_000 and expected["ioc.feedback.v1"] > 100
    migrate(pg_admin_url, schema=pg_schema)
    migrate(pg_admin_url, schema=second_schema)
    third = total // 3
    phases = [messages[:third], messages[third : 2 * third], messages[2 * third :]]
    with topic_prefix(bootstrap) as prefix:

        def env(schema: str, group: str) -> dict[str, str]:
            return ingest_env(
                db_url=str(services.writer_url),
                schema=schema,
                prefix=prefix,
                bootstrap=bootstrap,
                group=f"{group}-{uuid.uuid4().hex[:8]}",
            )

        def stored(n: int, what: str) -> None:
            wait_for(lambda: count_raw(pg_admin_url, pg_schema) >= n, 120, what)

        # The stream arrives in thirds: A alone takes the first; B joins (a rebalance) and the
        # two share the second; A stops (SIGTERM, another rebalance) and B takes the last.
        # Small batches make many concurrent transactions on the same rollup rows.
        group_env = env(pg_schema, "two")
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        args = ("--max-batch", "400", "--stop-when-idle", "120")
        produce(bootstrap, prefix, phases[0])
        a = start_ingest(group_env, log_a, *args)
        b = None
        try:
            stored(len(phases[0]), "the first third, by A")
            b = start_ingest(group_env, log_b, *args)
            wait_for(
                lambda: len({m for _, m in health_members(pg_admin_url, pg_schema)}) == 2, 60, "B"
            )
            produce(bootstrap, prefix, phases[1])
            stored(2 * third, "the second third, by A and B")
            a.send_signal(signal.SIGTERM)
            assert a.wait(timeout=30) == 0, log_a.read_text(errors="replace")[-2000:]
            produce(bootstrap, prefix, phases[2])
            stored(total, "the last third, by B")
            b.send_signal(signal.SIGTERM)
            assert b.wait(timeout=30) == 0, log_b.read_text(errors="replace")[-2000:]
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
        # The reference: one member reads the whole stream.
        run_ingest_until_idle(env(second_schema, "one"), tmp_path / "one.log")
    done = [re.search(r"ingest: done; (\d+) records", p.read_text()) for p in (log_a, log_b)]
    assert all(done), "both members log their totals"
    by_member = [int(m.group(1)) for m in done if m]
    # Each member stored a share of the second third, beyond its own third.
    assert by_member[0] > third and by_member[1] > total - 2 * third, by_member

    got, want = snapshot(pg_admin_url, pg_schema), snapshot(pg_admin_url, second_schema)
    assert set(got) == set(want)
    for table in sorted(want):
        assert got[table] == want[table], f"table {table} differs"
    for topic, table in RAW_TABLES.items():
        stored = len(got[table]) + sum(1 for r in got["dead_letters"] if r[0].endswith(topic))
        assert stored == expected.get(topic, 0), topic
    assert health(pg_admin_url, pg_schema) == health(pg_admin_url, second_schema)
    # Both members left: no stale lag or rate of theirs is added to anyone's any more.
    assert health_members(pg_admin_url, pg_schema) == []
    text = log_a.read_text(errors="replace") + log_b.read_text(errors="replace")
    assert "Traceback" not in text


def _feed_row(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT consumer_lag, rate_per_s, events_total FROM feed_health WHERE feed = 'payments'"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_feed_health_adds_the_fresh_members_lag_and_rate(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str
) -> None:
    """Written as the ingest role, so its privileges on feed_health_members are checked too."""
    assert services.writer_url
    migrate(pg_admin_url, schema=pg_schema)
    a = connector(services.writer_url, pg_schema, "test-a")()
    b = connector(services.writer_url, pg_schema, "test-b")()
    try:

        def report(
            conn: psycopg.Connection[Any], member: str, lag: int | None, rate: float
        ) -> None:
            with conn.transaction():
                write_health(
                    conn,
                    {"payments": FeedDelta(inserted=1)},
                    {"payments": lag},
                    {"payments": rate},
                    member,
                )

        report(a, "a", 5, 10.0)
        assert _feed_row(a) == (5, 10.0, 1)
        report(b, "b", 7, 3.5)
        assert _feed_row(b) == (12, 13.5, 2)
        report(a, "a", 1, 2.0)  # A's own row is replaced, B's is added
        assert _feed_row(a) == (8, 5.5, 3)
        report(b, "b", None, 1.0)  # B cannot see its lag: the group's lag is unknown
        assert _feed_row(b)[:2] == (None, 3.0)
        # A member silent for longer than MEMBER_FRESH_S no longer counts.
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL(
                    "UPDATE {}.feed_health_members "
                    "SET updated_at = now() - make_interval(secs => %s) WHERE member = 'a'"
                ).format(sql.Identifier(pg_schema)),
                (MEMBER_FRESH_S + 1,),
            )
        report(b, "b", 4, 1.0)
        assert _feed_row(b)[:2] == (4, 1.0)
        # A member that leaves takes its row with it; the next report counts only the others.
        report(a, "a", 6, 2.0)
        assert _feed_row(a)[:2] == (10, 3.0)
        with a.transaction():
            leave_health(a, "a")
        report(b, "b", 4, 1.0)
        assert _feed_row(b)[:2] == (4, 1.0)
        members = b.execute("SELECT member FROM feed_health_members").fetchall()
        assert members == [("b",)]
    finally:
        a.close()
        b.close()
