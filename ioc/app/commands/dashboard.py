"""Entry point of the callback step: `ioc dashboard`, the Dash app behind a waitress server."""

from __future__ import annotations

import argparse
import logging

from ioc.app.cli import CommandError
from ioc.app.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the live dashboard (wall view at /, ward pages at /ward/<code>)",
    )
    p.add_argument("--threads", type=int, default=8, help="server worker threads (default 8)")
    p.set_defaults(func=dashboard_command)


def _check_schema(settings: Settings) -> None:
    """Refuse to serve a schema without the IOC tables (every page would say "no data" with no
    hint why). A database that is not reachable yet is not refused: the dashboard says it is
    unavailable and recovers once the database is up."""
    import psycopg

    from ioc.core.db.schema import SchemaNotMigratedError, require_migrated
    from ioc.core.errors import NoDatabaseError
    from layouts.app import reader_connect

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
    from layouts.app import create_app  # Dash is imported only by this command

    host, port = settings.dashboard_host, settings.dashboard_port
    if settings.dashboard_debug and host not in {"127.0.0.1", "localhost", "::1"}:
        # Debug mode serves tracebacks and an interactive debugger: never beyond this machine.
        raise CommandError("IOC_DASHBOARD_DEBUG is only allowed with IOC_DASHBOARD_HOST=127.0.0.1")
    _check_schema(settings)
    app = create_app(settings)
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
