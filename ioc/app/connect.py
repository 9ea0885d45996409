"""Entry-point wiring: which database and broker to talk to, from settings or local services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import psycopg
from psycopg import sql

from ioc.app.settings import Settings
from ioc.core.errors import IocError, NoDatabaseError

Role = Literal["admin", "writer", "reader"]


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


def connect_options(application: str, connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg.connect's options for every IOC connection: autocommit, named in
    pg_stat_activity, and a silently dead server noticed within ~30 s instead of waiting on TCP
    forever."""
    return {
        "autocommit": True,
        "connect_timeout": connect_timeout,
        "application_name": application,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


def use_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """Set the search_path to exactly `schema`.

    Nothing else is on the path (pg_catalog and pg_temp always are): with `public` after it, a
    schema lacking a table read and wrote public's instead, so `IOC_DB_SCHEMA=rt ioc ingest`
    filled public. No query at run time needs an extension's functions, which live in public.
    """
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def connector(
    url: str, schema: str, application: str, *, connect_timeout: int = 5
) -> Callable[[], psycopg.Connection[Any]]:
    """A function opening a connection with connect_options whose search_path is exactly
    `schema` (use_schema)."""

    def connect() -> psycopg.Connection[Any]:
        conn = psycopg.connect(url, **connect_options(application, connect_timeout))
        try:
            use_schema(conn, schema)
        except BaseException:
            conn.close()
            raise
        return conn

    return connect


class NoKafkaError(IocError):
    """Neither IOC_KAFKA_BOOTSTRAP nor a running local broker says where Kafka is."""


def kafka_bootstrap(settings: Settings) -> str:
    """IOC_KAFKA_BOOTSTRAP when set, else the broker `ioc services up` started.

    Raises NoKafkaError (one line) when neither says where Kafka is; an unreadable state file
    raises its own ServiceError, an IocError too.
    """
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from ioc.app.services.state import read_connection_info

    found = read_connection_info(settings.data_dir).kafka_bootstrap
    if not found:
        raise NoKafkaError(
            "no Kafka: set IOC_KAFKA_BOOTSTRAP or start the local broker with `ioc services up`"
        )
    return found
