"""Entry point of the callback step: `ioc dashboard`, and the app built from settings for it."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from ioc.app.cli import CommandError
from ioc.app.settings import Settings

# Only what `ioc --help` needs is imported up front: the database client, pandas and Dash load
# when a dashboard is built.
if TYPE_CHECKING:
    import psycopg
    from dash import Dash
    from psycopg_pool import ConnectionPool

    from ioc.core.targets import DashboardConfig
    from layouts.security import AuthOptions

APPLICATION: Final = "ioc-dashboard"
# A refresh waits this long for a connection before it says the data is unavailable (as long
# as a connect may take: the server is there but slow, or a dead host's packets vanish).
WAIT_S: Final = 3
# After failing to connect for this long the pool gives up; the next refresh asking for a
# connection starts over at once, so a database that is back shows within a refresh or two
# instead of after an ever longer backoff.
RETRY_S: Final = 2.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the live dashboard (wall view at /, ward pages at /ward/<code>)",
    )
    p.add_argument("--threads", type=int, default=8, help="server worker threads (default 8)")
    p.set_defaults(func=dashboard_command)


def reader_connect(settings: Settings) -> Callable[[], psycopg.Connection[Any]]:
    """One connection as the dashboard's read-only role, on the configured schema."""
    from ioc.app.connect import connector, database_url

    url = database_url(settings, "reader")
    return connector(url, settings.db_schema, APPLICATION, connect_timeout=WAIT_S)


def open_pool(
    conninfo: str | Callable[[], str], schema: str, *, max_size: int
) -> ConnectionPool[psycopg.Connection[Any]]:
    """A pool of the dashboard's connections (connect_options, search_path exactly `schema`),
    opened in the background: a database that is not up yet is retried, not fatal. A callable
    `conninfo` is asked on every connect."""
    from psycopg_pool import ConnectionPool

    from ioc.app.connect import connect_options, use_schema

    # The pages say when the database is gone (and the data source logs it once): the pool's
    # line per failed attempt or dropped connection would flood the log during an outage.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        conninfo,
        kwargs=connect_options(APPLICATION, WAIT_S),
        configure=lambda conn: use_schema(conn, schema),
        min_size=1,
        max_size=max_size,
        timeout=WAIT_S,
        reconnect_timeout=RETRY_S,
        open=False,
        name=APPLICATION,
    )
    pool.open(wait=False)
    return pool


def reader_pool(settings: Settings, threads: int = 8) -> ConnectionPool[psycopg.Connection[Any]]:
    """The pool of a dashboard served by `threads` threads, as the read-only role. Where the
    database is gets resolved on each connect, so a dashboard started before `ioc services up`
    (or while the database is down) recovers by itself. Two connections per thread: a login
    holds one while it writes the audit row with another."""
    from ioc.app.connect import database_url

    return open_pool(
        lambda: database_url(settings, "reader"), settings.db_schema, max_size=2 * threads
    )


def auth_options(settings: Settings, enabled: bool = True) -> AuthOptions:
    """Logins (or none: the demo only) as the settings configure their sessions and cookies."""
    from layouts.security import AuthOptions

    return AuthOptions(
        enabled=enabled,
        session_hours=settings.session_hours,
        cookie_secure=True if settings.cookie_secure else None,
    )


def dashboard_app(
    settings: Settings,
    *,
    threads: int = 8,
    clock: Callable[[], datetime] | None = None,
    config: DashboardConfig | None = None,
    auth: bool | AuthOptions = True,
) -> Dash:
    """The dashboard of settings' city pack on reader_pool; `config` replaces the pack's
    targets.toml (tests, demos), `clock` is 'now' (default: the real one). `auth=False` (the
    demo only) serves everyone as an admin without login and says so."""
    from ioc.core.citypack import load_pack
    from ioc.core.targets import load_config
    from layouts.app import create_app
    from layouts.data import utc_now
    from layouts.security import AuthOptions

    pack = load_pack(settings.city_pack)
    return create_app(
        pack,
        config or load_config(pack.name, pack.codes),
        reader_pool(settings, threads),
        clock=clock or utc_now,
        auth=auth if isinstance(auth, AuthOptions) else auth_options(settings, auth),
        tiles_url=settings.map_tiles_url,
        trusted_proxies=settings.trusted_proxies,
    )


def _check_schema(settings: Settings) -> None:
    """Refuse to serve a schema without the IOC tables (every page would say "no data" with no
    hint why). A database that is not reachable yet is not refused: the dashboard says it is
    unavailable and recovers once the database is up."""
    import psycopg

    from ioc.core.db.schema import SchemaNotMigratedError, require_migrated
    from ioc.core.errors import NoDatabaseError

    try:
        with reader_connect(settings)() as conn:
            require_migrated(conn, settings.db_schema)
    except (psycopg.OperationalError, NoDatabaseError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logging.getLogger("ioc.dashboard").warning("database not reachable yet: %s", first)
    except SchemaNotMigratedError as exc:
        raise CommandError(str(exc)) from None


def dashboard_command(args: argparse.Namespace, settings: Settings) -> int:
    """Serve until interrupted; debug (Dash's dev server) only with IOC_DASHBOARD_DEBUG."""
    if args.threads < 1:
        raise CommandError("--threads must be at least 1")
    host, port = settings.dashboard_host, settings.dashboard_port
    if settings.dashboard_debug and host not in {"127.0.0.1", "localhost", "::1"}:
        # Debug mode serves tracebacks and an interactive debugger: never beyond this machine.
        raise CommandError("IOC_DASHBOARD_DEBUG is only allowed with IOC_DASHBOARD_HOST=127.0.0.1")
    _check_schema(settings)
    app = dashboard_app(settings, threads=args.threads)
    if settings.dashboard_debug:
        app.run(host=host, port=port, debug=True)
        return 0
    from waitress import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"ioc dashboard: http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    print("sign in with a user from `ioc users add`; wall screens: `ioc users display-token`")
    try:
        serve(app.server, host=host, port=port, threads=args.threads, ident="ioc-dashboard")
    except OSError as exc:
        raise CommandError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return 0
