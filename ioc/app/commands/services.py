"""`ioc services up|down|status`: the local Kafka broker and PostgreSQL server behind every step."""

from __future__ import annotations

import argparse
import os

from ioc.app.cli import CommandError
from ioc.app.services import manager
from ioc.app.services.state import ServiceError, default_cache_dir, state_path
from ioc.app.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `services` with its three actions."""
    parser = sub.add_parser(
        "services",
        help="start, stop or inspect the local Kafka broker and PostgreSQL server",
        description="Real services on loopback ports: PostgreSQL (Debian packages) and a "
        "single-node KRaft Kafka broker (jars from Maven Central). "
        "State: <data_dir>/services.json.",
    )
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    up = actions.add_parser("up", help="start the services, reusing running ones")
    up.add_argument(
        "--only", choices=manager.SERVICES, help="start only this service (default: both)"
    )
    up.set_defaults(func=handle_up)
    down = actions.add_parser("down", help="stop the services `up` started")
    down.add_argument("--only", choices=manager.SERVICES, help="stop only this service")
    down.set_defaults(func=handle_down)
    status = actions.add_parser("status", help="show each service, address, version and pid")
    status.set_defaults(func=handle_status)


def handle_up(args: argparse.Namespace, settings: Settings) -> int:
    """Start the services and print how to reach them."""
    only = [args.only] if args.only else None
    # The cache location is part of the environment this entry point reads once.
    cache_dir = default_cache_dir(os.environ)
    try:
        info, _ = manager.up(settings.data_dir, cache_dir, only)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    if info.admin_url:
        print(f"postgres: writer URL and passwords in {state_path(settings.data_dir.resolve())}")
    if info.kafka_bootstrap:
        print(f"kafka: bootstrap {info.kafka_bootstrap}")
    return 0


def handle_down(args: argparse.Namespace, settings: Settings) -> int:
    """Stop what `up` started."""
    only = [args.only] if args.only else None
    try:
        manager.down(settings.data_dir, only)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def handle_status(args: argparse.Namespace, settings: Settings) -> int:
    """One line per service; exit status 3 when any service is down (scriptable)."""
    try:
        rows = manager.status(settings.data_dir)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    print(f"{'service':<9} {'state':<5} {'address':<16} {'pid':>7}  version")
    for row in rows:
        pid = str(row.pid) if row.pid is not None else "-"
        state = "up" if row.up else "down"
        print(f"{row.name:<9} {state:<5} {row.address:<16} {pid:>7}  {row.version}")
    for row in rows:
        if row.log != "-":
            print(f"{row.name} log: {row.log}")
    return 0 if all(row.up for row in rows) else 3
