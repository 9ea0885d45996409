"""feed_health says a feed is stalled, since when and why, while any fresh member of the group
says so (written as the ingest role, read as the dashboard's)."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from ioc.app.connect import connector
from ioc.app.services.state import ConnectionInfo
from ioc.core.db.migrate import migrate
from ioc.core.health import read_health
from streams.ingest.health import FeedDelta, leave_health, write_health

WHY_A = "cannot read ioc.payments.v1[0] at offset 7: UnsupportedCodecError: zstd"
WHY_B = "cannot read ioc.payments.v1[2] at offset 3: CorruptRecordError: crc"


def report(conn: psycopg.Connection[Any], member: str, stall: str | None) -> None:
    with conn.transaction():
        write_health(
            conn,
            {"payments": FeedDelta(), "dossiers": FeedDelta()},
            {"payments": 40, "dossiers": 0},
            {},
            member,
            {"payments": stall} if stall else None,
        )


def test_a_stall_is_shown_while_a_member_reports_it_with_its_first_time(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str
) -> None:
    assert services.writer_url and services.reader_url
    migrate(pg_admin_url, schema=pg_schema)
    a = connector(services.writer_url, pg_schema, "test-a")()
    b = connector(services.writer_url, pg_schema, "test-b")()
    reader = connector(services.reader_url, pg_schema, "test-reader")()

    def row(feed: str = "payments") -> tuple[Any, ...]:
        h = next(h for h in read_health(reader) if h.feed == feed)
        return h.stall_reason, h.stalled_since, h.consumer_lag

    try:
        report(a, "a", WHY_A)
        why, since, lag = row()
        assert (why, lag) == (WHY_A, 40) and since is not None
        assert row("dossiers")[:2] == (None, None)
        time.sleep(0.05)
        report(a, "a", WHY_A)  # still stalled: the time it began is kept
        assert row()[:2] == (WHY_A, since)
        report(b, "b", None)  # B's partitions are fine; A's stall still shows
        assert row()[:2] == (WHY_A, since) and row()[2] == 80
        report(b, "b", WHY_B)  # B stalls later: the group's oldest stall is the one shown
        assert row()[:2] == (WHY_A, since)
        report(a, "a", None)
        why, since_b, _ = row()
        assert why == WHY_B and since_b is not None and since_b > since
        with b.transaction():
            leave_health(b, "b")
        report(a, "a", None)  # the stalled member left: nobody says the feed is stalled
        assert row()[:2] == (None, None)
    finally:
        for conn in (a, b, reader):
            conn.close()
