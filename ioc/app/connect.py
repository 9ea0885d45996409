"""Entry-point wiring: which database and broker to talk to, from settings or local services."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import psycopg
from psycopg import sql

from ioc.app.settings import Settings
from ioc.core.db.migrate import applied_versions, default_sql_dir, discover

Role = Literal["admin", "writer", "reader"]


class NoDatabaseError(Exception):
    """Neither IOC_DATABASE_URL nor a running local service says where the database is."""


def database_url(settings: Settings, role: Role = "admin") -> str:
    """IOC_DATABASE_URL when set (for every role), else the role's URL from `ioc services up`."""
    if settings.database_url:
        return settings.database_url
    # Imported here so that a deployment with IOC_DATABASE_URL never touches local service state.
    from ioc.app.services.state import read_connection_info

    info = read_connection_info(settings.data_dir)
    url = {"admin": info.admin_url, "writer": info.writer_url, "reader": info.reader_url}[role]
    if not url:
        raise NoDatabaseError(
            "no database: set IOC_DATABASE_URL or start the local one with `ioc services up`"
        )
    return url


def connector(
    url: str, schema: str, application: str, *, connect_timeout: int = 5
) -> Callable[[], psycopg.Connection[Any]]:
    """A function opening an autocommit connection whose search_path is exactly `schema`.

    Nothing else is on the path (pg_catalog and pg_temp always are): with `public` after it, a
    schema lacking a table read and wrote public's instead, so `IOC_DB_SCHEMA=rt ioc ingest`
    filled public. No query at run time needs an extension's functions, which live in public.
    """
    path = sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))

    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=connect_timeout,
            application_name=application,
            # Notice a silently dead server within ~30 s instead of waiting on TCP forever.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        try:
            conn.execute(path)
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


# What every command needs in its schema, made by the first migrations: the migration record,
# the feeds' health (written by ingest, read by status and the dashboard) and the dead letters.
IOC_TABLES: tuple[str, ...] = ("schema_migrations", "feed_health", "dead_letters")


class SchemaNotMigratedError(Exception):
    """The configured schema lacks the IOC tables; the message is one line saying what to run."""


def migrate_hint(schema: str) -> str:
    """The command that migrates `schema`, as the user would type it."""
    prefix = "" if schema == "public" else f"IOC_DB_SCHEMA={schema} "
    return f"{prefix}ioc db migrate"


def require_migrated(conn: psycopg.Connection[Any], schema: str) -> None:
    """SchemaNotMigratedError unless `schema` holds IOC_TABLES; read from the catalog, so it
    works for every role and whatever the connection's search_path."""
    rows = conn.execute(
        "SELECT tablename FROM pg_catalog.pg_tables "
        "WHERE schemaname = %(schema)s AND tablename = ANY(%(tables)s)",
        {"schema": schema, "tables": list(IOC_TABLES)},
    ).fetchall()
    missing = [t for t in IOC_TABLES if t not in {str(r[0]) for r in rows}]
    if len(missing) == len(IOC_TABLES):
        raise SchemaNotMigratedError(
            f"schema {schema!r} has no IOC tables; run: {migrate_hint(schema)}"
        )
    if missing:
        raise SchemaNotMigratedError(
            f"schema {schema!r} lacks IOC tables ({', '.join(missing)}); "
            f"run: {migrate_hint(schema)}"
        )
    # Tables from an older release are not enough: a column a newer migration adds (feed_health's
    # stall_reason, say) would fail at the first write with a traceback instead of this line.
    pending = sorted(set(newest_versions()) - set(applied_versions(conn, schema)))
    if pending:
        names = ", ".join(f"{v:03d}" for v in pending)
        raise SchemaNotMigratedError(
            f"schema {schema!r} lacks migrations {names}; run: {migrate_hint(schema)}"
        )


@functools.cache
def newest_versions() -> tuple[int, ...]:
    """The versions of the migrations this release ships (sql/), read once per process."""
    return tuple(m.version for m in discover(default_sql_dir()))


def kafka_bootstrap(settings: Settings) -> str:
    """IOC_KAFKA_BOOTSTRAP when set, else the broker `ioc services up` started.

    Raises CommandError (one line) when neither says where Kafka is.
    """
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from ioc.app.cli import CommandError
    from ioc.app.services.state import ServiceError, read_connection_info

    try:
        found = read_connection_info(settings.data_dir).kafka_bootstrap
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    if not found:
        raise CommandError(
            "no Kafka: set IOC_KAFKA_BOOTSTRAP or start the local broker with `ioc services up`"
        )
    return found
