"""What the stream commands (simulate, record, replay, rebuild) share: arguments, a status line."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from datetime import datetime
from types import FrameType
from typing import TextIO

from ioc.app.cli import CommandError
from ioc.app.settings import Settings, SettingsError, parse_patience
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import parse_feeds

# A log file (not a terminal) gets a status line this often at most, rather than every second.
LOG_EVERY_S = 10.0


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """ISO 8601 (offset optional, +07:00 assumed), 'now', or -DURATION meaning that long ago."""
    from simulators.timebase import parse_duration

    raw = text.strip()
    if raw == "now":
        return now
    if raw.startswith("-"):
        try:
            return now - parse_duration(raw[1:])
        except ValueError as exc:
            raise CommandError(f"{option} {text!r}: {exc}", status=2) from None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"{option} {text!r} is not an ISO time (e.g. 2025-12-10T06:00+07:00), now or -2h",
            status=2,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


def feed_names(spec: str) -> tuple[str, ...]:
    """--feeds as feed names; CommandError (status 2) naming the unknown ones."""
    try:
        return tuple(f.name for f in parse_feeds(spec))
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None


def add_patience_option(p: argparse.ArgumentParser) -> None:
    """--kafka-patience, shared by `ioc simulate` and `ioc replay`."""
    p.add_argument(
        "--kafka-patience",
        metavar="DURATION",
        help="how long to wait, keeping our place, for a Kafka broker that went away before "
        "giving up: 300, 90s, 5m, 1h; 0 = not at all (default IOC_KAFKA_PATIENCE or 5m)",
    )


def patience_seconds(args: argparse.Namespace, settings: Settings) -> float:
    """--kafka-patience, else IOC_KAFKA_PATIENCE; CommandError with one line if it is bad."""
    raw = getattr(args, "kafka_patience", None)
    if raw is None:
        return settings.kafka_patience
    try:
        return parse_patience("--kafka-patience", raw)
    except SettingsError as exc:
        raise CommandError(str(exc), status=2) from None


class StatusLine:
    """One status line on stderr, rewritten in place on a terminal, every 10 s in a log."""

    def __init__(self, out: TextIO, quiet: bool = False) -> None:
        self._out = out
        self._tty = out.isatty()
        self._quiet = quiet
        self._last = 0.0
        self._shown = False

    def show(self, text: str, final: bool = False) -> None:
        if self._quiet:
            return
        now = time.monotonic()
        if not self._tty and not final and self._shown and now - self._last < LOG_EVERY_S:
            return
        self._last = now
        self._out.write(("\r" + text.ljust(78)) if self._tty else text + "\n")
        self._out.flush()
        self._shown = True

    def note(self, text: str) -> None:
        """A line of its own (e.g. waiting for Kafka), shown even when quiet."""
        if self._shown and self._tty and not self._quiet:
            self._out.write("\n")
            self._shown = False
        self._out.write(text + "\n")
        self._out.flush()

    def done(self) -> None:
        if self._shown and self._tty and not self._quiet:
            self._out.write("\n")
            self._out.flush()
        self._shown = False


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the command finishes what it holds and stops."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def when(ms: int) -> str:
    """An epoch-ms time as the status lines show it: 2025-12-10 06:00 (+07:00 implied)."""
    return datetime.fromtimestamp(ms / 1000, VN_TZ).strftime("%Y-%m-%d %H:%M")
