"""Table step of the demo: the embedded server (or the one given), migrated, and what it already
holds (the newest event time, the consumer lag) for the plan and the progress line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg import sql

from ioc.app.demo.checks import DemoError, one_line, redact
from ioc.app.demo.embedded import READER_ROLE, WRITER_ROLE, EmbeddedError, EmbeddedPostgres
from ioc.core.db.migrate import MigrationError, migrate

log = logging.getLogger("ioc.app.demo")


@dataclass(frozen=True)
class Database:
    """How each step reaches the database, and the key the demo's state file names it by."""

    admin: str
    reader: str
    writer: str
    key: str


def given_database(url: str, schema: str) -> Database:
    """A server the user named: every step uses its URL as given."""
    return Database(url, url, url, f"{redact(url)} schema={schema}")


def embedded_database(
    data_dir: Path, say: Callable[[str], None], on_stop: Callable[[Callable[[], None]], None]
) -> Database:
    """Start the embedded server in `data_dir`; `on_stop` gets how to stop it, before it starts,
    so that a server that fails half-way through its start is stopped too."""
    t0 = time.monotonic()
    try:
        pg = EmbeddedPostgres(data_dir, log.info)
        on_stop(pg.stop)
        pg.start()
    except EmbeddedError as exc:
        raise DemoError(str(exc)) from None
    who = f" as user {pg.run_as.name}" if pg.run_as else ""
    say(
        f"embedded PostgreSQL {pg.server_version()} in {pg.root}{who} "
        f"({'created' if pg.initialised_now else 'reused'}, {time.monotonic() - t0:.1f} s)"
    )
    return Database(pg.url(), pg.url(READER_ROLE), pg.url(WRITER_ROLE), f"embedded:{pg.data}")


def migrate_database(admin: str, schema: str) -> None:
    """The migrations the dashboard and the ingest loop expect, in one line when they fail."""
    try:
        result = migrate(admin, schema=schema)
    except MigrationError as exc:
        raise DemoError(str(exc)) from None
    except psycopg.OperationalError as exc:
        raise DemoError(f"cannot reach the database: {one_line(exc)}") from None
    if result.applied:
        log.info("migrations applied: %s", result.applied)


def latest_event_time(admin: str, schema: str) -> int | None:
    """The newest event time any feed has stored (feed_health), in epoch seconds."""
    query = sql.SQL("SELECT max(last_event_time) FROM {}.feed_health").format(
        sql.Identifier(schema)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    if row is None or row[0] is None:
        return None
    value: datetime = row[0]
    return int(value.timestamp())


def total_lag(admin: str, schema: str) -> int | None:
    """The consumer lag the ingest loop last reported, summed over the feeds (None: unknown)."""
    query = sql.SQL("SELECT sum(consumer_lag), count(consumer_lag) FROM {}.feed_health").format(
        sql.Identifier(schema)
    )
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    if row is None or not row[1]:
        return None
    return int(row[0])
