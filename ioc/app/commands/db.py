"""Entry point for the table step: `ioc db migrate` and `ioc db status`."""

from __future__ import annotations

import argparse
from pathlib import Path

import psycopg

from ioc.app.cli import CommandError
from ioc.app.connect import database_url
from ioc.app.settings import Settings, SettingsError, parse_name
from ioc.core.db.migrate import MigrationError, default_sql_dir, migrate, pending
from ioc.core.errors import NoDatabaseError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ioc db ...`."""
    parser = sub.add_parser("db", help="database schema: apply and inspect migrations")
    dbsub = parser.add_subparsers(dest="db_command", required=True)
    for name, helptext in (
        ("migrate", "apply pending sql/NNN_*.sql migrations in order"),
        ("status", "list applied and pending migrations"),
    ):
        p = dbsub.add_parser(name, help=helptext)
        # No default of its own: a flag default would win over IOC_DB_SCHEMA, which every
        # other command follows, and migrate a schema nothing else reads.
        p.add_argument(
            "--schema",
            type=_schema,
            default=None,
            help="target schema (default: IOC_DB_SCHEMA, else public)",
        )
        p.add_argument("--sql-dir", type=Path, default=None, help="migrations directory")
        p.set_defaults(func=_run_migrate if name == "migrate" else _run_status)


def _schema(text: str) -> str:
    try:
        return parse_name("--schema", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _url(settings: Settings) -> str:
    try:
        return database_url(settings, "admin")
    except NoDatabaseError as exc:
        raise CommandError(str(exc)) from None


def _run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    schema = args.schema or settings.db_schema
    try:
        result = migrate(_url(settings), schema=schema, sql_dir=args.sql_dir)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot reach the database: {_first_line(exc)}") from None
    mode = "TimescaleDB" if result.timescaledb else "plain PostgreSQL (no TimescaleDB)"
    done = ", ".join(f"{v:03d}" for v in result.applied) or "nothing"
    print(
        f"migrations in schema {schema}: applied {done}; "
        f"{len(result.skipped)} already applied; {mode}"
    )
    return 0


def _run_status(args: argparse.Namespace, settings: Settings) -> int:
    sql_dir = args.sql_dir or default_sql_dir()
    schema = args.schema or settings.db_schema
    try:
        todo = pending(_url(settings), schema=schema, sql_dir=sql_dir)
    except MigrationError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot reach the database: {_first_line(exc)}") from None
    if not todo:
        print(f"schema {schema}: up to date")
    for mig in todo:
        print(f"pending {mig.version:03d} {mig.name}")
    return 0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
