"""Whether a schema is ready: the IOC tables and every migration this release ships, or one line."""

from __future__ import annotations

import functools
from typing import Any

import psycopg

from ioc.core.db.migrate import applied_versions, default_sql_dir, discover
from ioc.core.errors import IocError

# What every command needs in its schema, made by the first migrations: the migration record,
# the feeds' health (written by ingest, read by status and the dashboard) and the dead letters.
IOC_TABLES: tuple[str, ...] = ("schema_migrations", "feed_health", "dead_letters")


class SchemaNotMigratedError(IocError):
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
