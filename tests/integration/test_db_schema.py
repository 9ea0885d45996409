"""IOC_DB_SCHEMA is the one schema of every command: `ioc db migrate`, `ioc ingest`, `ioc status`
and the dashboard follow it from the environment alone, and a schema without the tables is
refused in one line, never served from (or written into) another schema.

Each test works in a database of its own whose `public` schema is migrated: the trap the old
search_path (`<schema>, public`) fell into, so that `IOC_DB_SCHEMA=rt ioc ingest` wrote there."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec
import psycopg
import pytest
from psycopg import sql

from ioc.app.commands.dashboard import reader_connect, reader_pool
from ioc.app.services.state import PLAIN_DATABASE, ConnectionInfo, free_port
from ioc.app.settings import Settings
from ioc.core.citypack import load_pack
from ioc.core.db.migrate import migrate
from ioc.core.queries.timeline import Span, data_span
from ioc.core.targets import load_config
from layouts.data import DataSource
from tests.integration.conftest import suite_database
from tests.support.ingest_run import (
    RAW_TABLES,
    REPO,
    ingest_env,
    produce,
    run_ingest_until_idle,
    simulated,
    topic_prefix,
)


def _in_database(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


@pytest.fixture
def decoy_db(pg_admin_url: str) -> Iterator[str]:
    """A fresh database (its name) whose `public` schema holds the IOC tables, empty."""
    name = f"t_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        if suite_database() == PLAIN_DATABASE:
            # The suite's plain-PostgreSQL run keeps TimescaleDB out of this database too.
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET ioc.timescaledb = 'off'").format(
                    sql.Identifier(name)
                )
            )
    try:
        migrate(_in_database(pg_admin_url, name), schema="public")
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _urls(services: ConnectionInfo, dbname: str) -> tuple[str, str, str]:
    """(admin, writer, reader) URLs of the decoy database."""
    assert services.admin_url and services.writer_url and services.reader_url
    return (
        _in_database(services.admin_url, dbname),
        _in_database(services.writer_url, dbname),
        _in_database(services.reader_url, dbname),
    )


def _ioc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.app.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _rows(admin_url: str, schema: str) -> dict[str, int]:
    """Rows of each raw table and the dead letters in `schema` (-1: no such table)."""
    out: dict[str, int] = {}
    with psycopg.connect(admin_url) as conn:
        for table in [*RAW_TABLES.values(), "dead_letters"]:
            found = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                (schema, table),
            ).fetchone()
            if found is None:
                out[table] = -1
                continue
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            row = conn.execute(query).fetchone()
            out[table] = int(row[0]) if row else 0
    return out


def test_a_schema_without_tables_is_refused_in_one_line(
    services: ConnectionInfo, kafka_bootstrap: str, decoy_db: str, tmp_path: Path
) -> None:
    admin, writer, reader = _urls(services, decoy_db)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA empty_one")
    public_before = _rows(admin, "public")
    with topic_prefix(kafka_bootstrap) as prefix:
        # Something to write, were the command to start: it must not land in public.
        start = datetime.now(UTC) - timedelta(hours=1)
        produce(kafka_bootstrap, prefix, simulated(start, timedelta(minutes=5), seed=4))
        for schema in ("rt_missing", "empty_one"):
            env = ingest_env(
                db_url=writer, schema=schema, prefix=prefix, bootstrap=kafka_bootstrap,
                group=f"schema-{uuid.uuid4().hex[:8]}",
            )  # fmt: skip
            want = f"ioc: error: schema '{schema}' has no IOC tables; run: "
            want += f"IOC_DB_SCHEMA={schema} ioc db migrate\n"
            port = str(free_port())
            for args, url in (
                (("ingest", "--stop-when-idle", "2"), writer),
                (("status",), reader),
                (("dashboard",), reader),
                (("users", "list"), admin),
            ):
                done = _ioc({**env, "IOC_DATABASE_URL": url, "IOC_DASHBOARD_PORT": port}, *args)
                assert done.returncode == 1, (schema, args, done.stdout, done.stderr)
                assert done.stderr == want, (schema, args, done.stderr[-3000:])
                assert done.stdout == "", (schema, args)
    assert _rows(admin, "public") == public_before
    with psycopg.connect(admin) as conn:
        # Not even a schema was made for the missing one: only `ioc db migrate` creates it.
        assert conn.execute("SELECT to_regnamespace('rt_missing')").fetchone() == (None,)


def test_ioc_db_schema_reaches_migrate_ingest_status_and_dashboard(
    services: ConnectionInfo, kafka_bootstrap: str, decoy_db: str, tmp_path: Path
) -> None:
    admin, writer, reader = _urls(services, decoy_db)
    schema = f"rt_{uuid.uuid4().hex[:8]}"
    base = ingest_env(
        db_url=admin, schema=schema, prefix="", bootstrap=kafka_bootstrap, group="unused"
    )

    # The flag has no default of its own: the environment picks the schema.
    done = _ioc(base, "db", "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"migrations in schema {schema}: applied 001, 002")
    assert _ioc(base, "db", "status").stdout == f"schema {schema}: up to date\n"
    assert _rows(admin, "public") == dict.fromkeys([*RAW_TABLES.values(), "dead_letters"], 0)
    # The flag still wins for one run.
    other = f"{schema}_flag"
    done = _ioc(base, "db", "migrate", "--schema", other)
    assert done.returncode == 0 and f"migrations in schema {other}:" in done.stdout
    bad = _ioc(base, "db", "migrate", "--schema", "no spaces")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--schema" in bad.stderr

    now = datetime.now(UTC)
    events = simulated(now - timedelta(hours=2), timedelta(minutes=20), seed=3)
    with topic_prefix(kafka_bootstrap) as prefix:
        produce(kafka_bootstrap, prefix, events)
        env = ingest_env(
            db_url=writer, schema=schema, prefix=prefix, bootstrap=kafka_bootstrap,
            group=f"schema-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        log = tmp_path / "ingest.log"
        run_ingest_until_idle(env, log)
        assert f"into schema {schema}" in log.read_text()
        status = _ioc({**env, "IOC_DATABASE_URL": reader}, "status")
    assert status.returncode == 0, status.stderr
    assert {line.split()[0] for line in status.stdout.splitlines()[1:]} == {
        "dossiers", "payments", "feedback", "air_quality",
    }  # fmt: skip

    stored = _rows(admin, schema)
    for topic, table in RAW_TABLES.items():
        ids = {msgspec.json.decode(m.value)["event_id"] for m in events if m.topic == topic}
        assert stored[table] == len(ids), table
    assert stored["dead_letters"] == 0
    assert _rows(admin, "public") == dict.fromkeys([*RAW_TABLES.values(), "dead_letters"], 0)
    assert _rows(admin, other)["payment_events"] == 0

    # The dashboard's connections: built from the same environment, reading only that schema.
    settings = Settings.from_env({**env, "IOC_DATABASE_URL": reader})
    with reader_connect(settings)() as conn:
        assert conn.execute("SHOW search_path").fetchone() == (schema,)
    pack = load_pack(settings.city_pack)
    data = DataSource(reader_pool(settings), pack, load_config(pack.name, pack.codes))
    span = data.read(data_span)
    assert isinstance(span, Span), span
    assert span.start <= now - timedelta(hours=2) < span.end <= now
    payments = data.read(lambda c: c.execute("SELECT count(*) FROM payment_events").fetchone())
    assert payments == (stored["payment_events"],)
    assert data.read(lambda c: c.execute("SHOW search_path").fetchone()) == (schema,)
    data.close()
