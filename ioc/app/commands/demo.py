"""Entry point of the whole data path for newcomers: `ioc demo`, the one-command live demo."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import platformdirs

from ioc.app.cli import CommandError
from ioc.app.settings import (
    Settings,
    SettingsError,
    check_bootstrap,
    check_database_url,
    parse_port,
)

DEFAULT_DATA_DIR = Settings().data_dir  # `.ioc`: the services' directory, not the demo's


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ioc demo`."""
    p = sub.add_parser(
        "demo",
        help="run the whole product on this machine: database, feeds, ingest and dashboard",
        description=(
            "Start an embedded PostgreSQL (from a Python wheel), the in-process feed bus, the "
            "four simulators (backfilling a week of history first) and the dashboard. With "
            "IOC_DATABASE_URL and IOC_KAFKA_BOOTSTRAP (or the flags) it uses those services "
            "instead. Ctrl-C stops everything; a second start carries on from the stored data."
        ),
    )
    p.add_argument("--port", type=_port, default=None, help="dashboard port (IOC_DASHBOARD_PORT)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the demo keeps its database and state (IOC_DATA_DIR; "
        "default: the user data directory, e.g. ~/.local/share/ioc/demo)",
    )
    p.add_argument("--days", type=_days, default=7.0, help="days of history (default 7)")
    p.add_argument(
        "--speed",
        type=_speed,
        default=1.0,
        help="live pace after the history: 1 = real time (default), N = N times faster",
    )
    p.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    p.add_argument(
        "--volume-scale",
        type=_scale,
        default=1.0,
        help="multiply every arrival rate (default 1: plausible for the city)",
    )
    p.add_argument("--database-url", default=None, help="use this PostgreSQL (IOC_DATABASE_URL)")
    p.add_argument(
        "--kafka-bootstrap", default=None, help="use this Kafka, host:port (IOC_KAFKA_BOOTSTRAP)"
    )
    p.add_argument(
        "--no-dashboard", action="store_true", help="run the data pipeline without the dashboard"
    )
    p.set_defaults(func=demo_command)


def _port(text: str) -> int:
    try:
        return parse_port("--port", text)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number ({what})") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number ({what})")
    return value


def _days(text: str) -> float:
    value = _positive(text, "days of history")
    if value > 60:
        raise argparse.ArgumentTypeError(f"{text!r}: at most 60 days of history")
    return value


def _speed(text: str) -> float:
    return _positive(text.removeprefix("x"), "live speed")


def _scale(text: str) -> float:
    return _positive(text, "volume scale")


def default_data_dir() -> Path:
    """The user's data directory for the demo (XDG: ~/.local/share/ioc/demo)."""
    return platformdirs.user_data_path("ioc") / "demo"


def resolve_data_dir(args_dir: Path | None, settings: Settings) -> Path:
    """--data-dir, else IOC_DATA_DIR when set to something other than the services' `.ioc`,
    else the user data directory."""
    if args_dir is not None:
        return args_dir.expanduser().absolute()
    if settings.data_dir != DEFAULT_DATA_DIR:
        return settings.data_dir.expanduser().absolute()
    return default_data_dir()


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the demo until SIGINT or SIGTERM."""
    # Imported when the demo runs, not when the CLI registers its commands: the demo's modules
    # pull in the simulators, the ingest loop and Kafka's client (~0.7 s), which would slow
    # `ioc --help` and every other command.
    from ioc.app.demo.checks import DemoError
    from ioc.app.demo.orchestrator import Demo, DemoOptions

    database_url = args.database_url or settings.database_url
    kafka = args.kafka_bootstrap or settings.kafka_bootstrap
    try:
        if args.database_url:
            check_database_url("--database-url", args.database_url)
        if args.kafka_bootstrap:
            check_bootstrap("--kafka-bootstrap", args.kafka_bootstrap)
    except SettingsError as exc:
        raise CommandError(str(exc), status=2) from None
    options = DemoOptions(
        data_dir=resolve_data_dir(args.data_dir, settings),
        host=settings.dashboard_host,
        port=args.port if args.port is not None else settings.dashboard_port,
        days=args.days,
        speed=args.speed,
        seed=args.seed,
        volume_scale=args.volume_scale,
        database_url=database_url,
        kafka_bootstrap=kafka,
        dashboard=not args.no_dashboard,
    )
    stop = threading.Event()
    _install_signals(stop)
    demo = Demo(settings, options, out=sys.stdout, stop=stop)
    try:
        demo.run()
    except DemoError as exc:
        raise CommandError(str(exc)) from None
    print("ioc demo: stopped", flush=True)
    return 0


def _install_signals(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: stop cleanly. A second one: stop without waiting for the drain."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
