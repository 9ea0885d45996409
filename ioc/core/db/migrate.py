"""Table step: apply the numbered SQL files under sql/ in order, once each, recorded in a table."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from ioc.core.errors import IocError

MIGRATION_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
RECORD_TABLE = "schema_migrations"
WRITER_ROLE = "ioc_writer"
READER_ROLE = "ioc_reader"
# Tables whose privileges differ from the blanket ones (read for both roles, insert and update for
# ingest), with the only privileges anyone but the admin has on them: on the access-control and
# dashboard tables (sql/006_auth.sql, 003) ingest has none and the dashboard what login,
# sessions, acknowledgements and the audit log need. Re-applied after every migration because the
# blanket grants would otherwise widen them again.
AUTH_GRANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "users": {READER_ROLE: ("SELECT",)},
    "sessions": {READER_ROLE: ("SELECT", "INSERT", "DELETE")},
    "display_tokens": {READER_ROLE: ("SELECT", "UPDATE (last_used_at)")},
    "audit_log": {READER_ROLE: ("INSERT",)},
    # Acknowledging an alert is the dashboard's one write outside the login tables; ingest has
    # no business there. Granted here too, so a role created after 003 ran still gets it.
    "alert_acks": {READER_ROLE: ("SELECT", "INSERT")},
    "schema_migrations": {READER_ROLE: ("SELECT",), WRITER_ROLE: ("SELECT",)},
    # The one table ingest deletes from: a member removes its own rows when it stops (sql/007).
    "feed_health_members": {
        READER_ROLE: ("SELECT",),
        WRITER_ROLE: ("SELECT", "INSERT", "UPDATE", "DELETE"),
    },
}
# Any constant works; it only has to be the same for every runner so two never interleave.
_ADVISORY_LOCK_KEY = 0x10C_0001


class MigrationError(IocError):
    """A migration set that cannot be applied as it stands (bad name, edited file, SQL error)."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    path: Path
    checksum: str

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class MigrateResult:
    """What a run did: the versions applied now, those already there, and the TimescaleDB use."""

    applied: tuple[int, ...]
    skipped: tuple[int, ...]
    timescaledb: bool


def default_sql_dir() -> Path:
    """The repository's sql/ directory (beside the ioc package)."""
    return Path(__file__).resolve().parents[3] / "sql"


def discover(sql_dir: Path) -> list[Migration]:
    """The migrations in sql_dir, in version order; MigrationError on a bad or repeated number."""
    if not sql_dir.is_dir():
        raise MigrationError(f"migrations directory {sql_dir} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = MIGRATION_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNN_lower_snake.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version:03d} is also used by {found[version].path.name}"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, match.group(2), path, digest)
    return [found[v] for v in sorted(found)]


def _ensure_schema(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (version integer PRIMARY KEY, name text NOT NULL,"
            " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(schema), sql.Identifier(RECORD_TABLE))
    )


def _try_timescaledb(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Create the extension when the server offers it; report whether it is in use."""
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        return False
    # A database can opt out (ALTER DATABASE d SET ioc.timescaledb = 'off'): the same server then
    # proves the plain-PostgreSQL path, as `ioc services up` does with database ioc_plain.
    opted_out = conn.execute("SELECT current_setting('ioc.timescaledb', true)").fetchone()
    if opted_out is not None and str(opted_out[0]).lower() in ("off", "false", "0"):
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        # Installed but not preloaded (shared_preload_libraries): plain PostgreSQL it is.
        return False
    return True


def applied_versions(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> dict[int, str]:
    """Version -> checksum of what the schema has recorded as applied."""
    query = sql.SQL("SELECT version, checksum FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(RECORD_TABLE)
    )
    return {int(str(v)): str(c) for v, c in conn.execute(query).fetchall()}


def grant_roles(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> list[str]:
    """Least privilege on the schema for existing roles: ingest writes, dashboard reads."""
    existing = {
        str(r[0])
        for r in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%(names)s)",
            {"names": [WRITER_ROLE, READER_ROLE]},
        ).fetchall()
    }
    ident = sql.Identifier(schema)
    for role in sorted(existing):
        rid = sql.Identifier(role)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(ident, rid))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(ident, rid))
    if WRITER_ROLE in existing:
        rid = sql.Identifier(WRITER_ROLE)
        conn.execute(
            sql.SQL("GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA {} TO {}").format(ident, rid)
        )
        conn.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(ident, rid)
        )
        conn.execute(
            sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(ident, rid)
        )  # staging tables for COPY are created per session by ingest
    _narrow_auth_grants(conn, schema, existing)
    return sorted(existing)


def _narrow_auth_grants(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, roles: set[str]
) -> None:
    present = {
        str(r[0])
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %(s)s AND tablename = ANY(%(t)s)",
            {"s": schema, "t": list(AUTH_GRANTS)},
        ).fetchall()
    }
    for table in sorted(present):
        tid = sql.Identifier(schema, table)
        for role in sorted(roles):
            rid = sql.Identifier(role)
            conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(tid, rid))
            for privilege in AUTH_GRANTS[table].get(role, ()):
                # privilege is one of the constants above, never input.
                conn.execute(sql.SQL("GRANT " + privilege + " ON {} TO {}").format(tid, rid))


def migrate(
    conninfo: str,
    *,
    schema: str = "public",
    sql_dir: Path | None = None,
    target: int | None = None,
) -> MigrateResult:
    """Apply pending migrations to `schema`, one transaction each, under an advisory lock."""
    migrations = discover(sql_dir or default_sql_dir())
    applied: list[int] = []
    skipped: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        timescale = _try_timescaledb(conn)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%(k)s)", {"k": _ADVISORY_LOCK_KEY})
            _ensure_schema(conn, schema)
            path = _migration_path(conn, schema)
            done = applied_versions(conn, schema)
            for mig in migrations:
                if target is not None and mig.version > target:
                    break
                if mig.version in done:
                    if done[mig.version] != mig.checksum:
                        raise MigrationError(
                            f"{mig.path.name} was changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    skipped.append(mig.version)
                    continue
                _apply_one(conn, schema, mig, path)
                applied.append(mig.version)
            grant_roles(conn, schema)
    return MigrateResult(tuple(applied), tuple(skipped), timescale)


def _migration_path(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> sql.Composed:
    """SET LOCAL search_path: the target schema, then only the schema TimescaleDB's functions
    live in (create_hypertable, policies), when it is in use. Never a fixed `public`: in a
    database without the extension a migration then cannot touch any other schema's tables."""
    found = conn.execute(
        "SELECT n.nspname FROM pg_catalog.pg_extension e "
        "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'timescaledb'"
    ).fetchone()
    names = dict.fromkeys([schema] if found is None else [schema, str(found[0])])
    return sql.SQL("SET LOCAL search_path TO {}").format(
        sql.SQL(", ").join(sql.Identifier(n) for n in names)
    )


def _apply_one(
    conn: psycopg.Connection[tuple[object, ...]],
    schema: str,
    mig: Migration,
    path: sql.Composed,
) -> None:
    try:
        with conn.transaction():
            conn.execute(path)
            # The file is trusted project code, not input: it is executed as one script.
            conn.execute(mig.text.encode("utf-8"))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (version, name, checksum) VALUES (%(v)s, %(n)s, %(c)s)"
                ).format(sql.Identifier(schema), sql.Identifier(RECORD_TABLE)),
                {"v": mig.version, "n": mig.name, "c": mig.checksum},
            )
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MigrationError(f"{mig.path.name} failed: {first}") from exc


def pending(
    conninfo: str, *, schema: str = "public", sql_dir: Path | None = None
) -> Sequence[Migration]:
    """Migrations not yet applied to `schema`."""
    migrations = discover(sql_dir or default_sql_dir())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %(s)s "
            "AND table_name = %(t)s",
            {"s": schema, "t": RECORD_TABLE},
        ).fetchone()
        done = applied_versions(conn, schema) if exists else {}
    return [m for m in migrations if m.version not in done]
