"""Consumer step's entry points: `ioc ingest` (topics -> tables) and `ioc status` (feed health)."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import psycopg

from ioc.app.cli import CommandError
from ioc.app.connect import connector, kafka_bootstrap
from ioc.app.settings import Settings
from ioc.core.db.connection import Connect
from ioc.core.db.schema import SchemaNotMigratedError, migrate_hint, require_migrated
from ioc.core.feeds import Feed, parse_feeds

if TYPE_CHECKING:
    from ioc.core.citypack import CityPack

INGEST_SWITCH_INTERVAL_S = 0.001
INGEST_GC_THRESHOLDS = (50_000, 20, 100)
log = logging.getLogger("ioc.app.commands.ingest")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ingest` and `status`."""
    p = sub.add_parser(
        "ingest",
        help="consume the feeds' topics into PostgreSQL (exactly once in effect)",
        description="Consume the feeds' topics into PostgreSQL; offsets are committed only "
        "after the database transaction holding the batch commits.",
    )
    p.add_argument("--feeds", default="all", help="'all' or a comma list, e.g. dossiers,payments")
    p.add_argument(
        "--source",
        choices=("kafka", "bus"),
        default="kafka",
        help="kafka (default) or the in-process bus (only inside a process that also produces)",
    )
    p.add_argument("--max-batch", type=_positive_int, default=10_000, metavar="N")
    p.add_argument(
        "--stop-when-idle",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="exit 0 after this many seconds without a record (tests, benchmarks)",
    )
    p.add_argument("--log-every", type=_positive_float, default=10.0, metavar="SECONDS")
    p.add_argument(
        "--metrics-out", type=Path, default=None, metavar="PATH", help="write a JSON summary"
    )
    p.set_defaults(func=ingest_command)

    s = sub.add_parser("status", help="per-feed freshness, lag, rate and dead letters")
    s.set_defaults(func=status_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _db_url(settings: Settings, role: str) -> str:
    from ioc.app.connect import database_url
    from ioc.core.errors import NoDatabaseError

    try:
        return database_url(settings, "writer" if role == "writer" else "reader")
    except NoDatabaseError as exc:
        raise CommandError(str(exc)) from None


def _check_schema(connect: Connect, schema: str) -> None:
    """Fail fast on an unmigrated schema; an unreachable database is retried by the loop."""
    try:
        with connect() as conn:
            require_migrated(conn, schema)
    except psycopg.OperationalError as exc:
        log.warning("ingest: database not reachable yet (%s); will retry", str(exc).strip())
    except SchemaNotMigratedError as exc:
        raise CommandError(str(exc)) from None


class _QuietMissingTopics(logging.Filter):
    """Drop kafka-python's per-poll error for a topic the broker has not created yet."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "not found in cluster metadata" not in record.getMessage()


class _ThrottleKafkaErrors(logging.Filter):
    """kafka-python logs two or three lines per refused connection attempt; with attempts every
    second while a broker restarts (the Kafka source) that buried everything else. Each of
    its messages is shown at most once per window, with the count of the ones not shown."""

    def __init__(self, window_s: float = 10.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("kafka"):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        shown_at, hidden = self._seen.get(key, (float("-inf"), 0))
        if now - shown_at < self._window_s:
            self._seen[key] = (shown_at, hidden + 1)
            return False
        self._seen[key] = (now, 0)
        if hidden:
            record.msg = f"{record.getMessage()} (and {hidden} more like it not shown)"
            record.args = ()
        return True


def _install_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("ingest: %s received; finishing", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the ingest loop until SIGTERM/SIGINT (or idle with --stop-when-idle)."""
    from streams.ingest.loop import IngestOptions
    from streams.ingest.setup import IngestSetup
    from streams.transport.kafka_source import BrokerUnavailable, KafkaSource

    _ingest_logging()
    feeds = _ingest_feeds(args)
    into = IngestSetup(
        connect=connector(_db_url(settings, "writer"), settings.db_schema, "ioc-ingest"),
        wards=_loaded_pack(settings.city_pack),
        topic_name=settings.topic,
        earliest=settings.earliest_event_time,
    )
    _check_schema(into.connect, settings.db_schema)
    bootstrap = kafka_bootstrap(settings)
    stop = threading.Event()
    _install_signals(stop)
    routes = into.routes(feeds)
    try:
        source = KafkaSource(bootstrap, settings.consumer_group, routes, stop=stop)
    except BrokerUnavailable:
        log.info("ingest: stopped before the broker answered")
        return 0
    options = IngestOptions(max_batch=args.max_batch, log_every_s=args.log_every)
    ingestor = into.ingestor(source, routes, stop=stop, options=options)
    log.info(
        "ingest: %s from %s (group %s) into schema %s",
        ", ".join(routes),
        bootstrap,
        settings.consumer_group,
        settings.db_schema,
    )
    _tune_interpreter()
    started = time.monotonic()
    try:
        totals = ingestor.run(idle_exit_s=args.stop_when_idle)
    finally:
        ingestor.close()
        source.close()
    log.info(
        "ingest: done; %d records, %d inserted, %d duplicates, %d dead letters in %d batches",
        totals.records,
        totals.inserted,
        totals.duplicates,
        totals.dead,
        totals.batches,
    )
    if args.metrics_out is not None:
        summary = _metrics(totals, time.monotonic() - started)
        args.metrics_out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


def _ingest_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietMissingTopics())
        handler.addFilter(_ThrottleKafkaErrors())


def _ingest_feeds(args: argparse.Namespace) -> tuple[Feed, ...]:
    try:
        feeds = parse_feeds(args.feeds)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.source == "bus":
        raise CommandError(
            "the in-process bus exists only inside one process; use "
            "streams.transport.bus_source.BusSource "
            "from the process that runs the simulators (the demo does), or --source kafka"
        )
    return feeds


def _loaded_pack(name: str) -> CityPack:
    from ioc.core.citypack import load_pack

    pack = load_pack(name)
    if pack.wards:
        # Builds the point-in-ward index now rather than inside the first batch.
        pack.ward_at(pack.wards[0].lat, pack.wards[0].lon)
    return pack


def _tune_interpreter() -> None:
    # The store thread mostly waits for PostgreSQL while the poll thread decodes. With the
    # default 5 ms switch interval every answer from the database waited up to 5 ms for the GIL,
    # some 30 times per batch; 1 ms measured 37k -> 47k events/s (bench.ingest, 400k events).
    sys.setswitchinterval(INGEST_SWITCH_INTERVAL_S)
    # Every record allocates a handful of tracked objects (kafka-python's record, ours, the
    # batch lists), so the default threshold of 700 ran a collection every ~100 records, each
    # walking the batches in flight; nothing on that path forms cycles. Start-up objects are
    # frozen out of collections and young ones are collected every 50,000 allocations:
    # decode_batch on 91k payments went from 5.7 to 2.3 us per record.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*INGEST_GC_THRESHOLDS)


def _metrics(totals: Any, wall_s: float) -> dict[str, Any]:
    """The run's figures for --metrics-out (bench.ingest reads them)."""
    busy = None
    if totals.first_record_at is not None and totals.last_commit_at is not None:
        busy = totals.last_commit_at - totals.first_record_at
    return {
        "records": totals.records,
        "inserted": totals.inserted,
        "duplicates": totals.duplicates,
        "dead_letters": totals.dead,
        "batches": totals.batches,
        "wall_s": wall_s,
        "busy_s": busy,
        # CLOCK_MONOTONIC is system-wide: members of one group can be lined up.
        "first_record_at": totals.first_record_at,
        "last_commit_at": totals.last_commit_at,
        "events_per_s": totals.records / busy if busy else None,
        # Where the time went (seconds, summed over batches): decoding on the polling
        # thread; the store's wall time vs its own CPU (the rest waits on PostgreSQL).
        "decode_s": round(totals.decode_s, 3),
        "store_s": round(totals.store_s, 3),
        "store_cpu_s": round(totals.store_cpu_s, 3),
        "offset_commit_s": round(totals.commit_s, 3),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def status_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print each feed's health row, read as the dashboard's (reader) role."""
    from ioc.core.health import read_health

    connect = connector(_db_url(settings, "reader"), settings.db_schema, "ioc-status")
    try:
        with connect() as conn:
            require_migrated(conn, settings.db_schema)
            rows = read_health(conn)
    except psycopg.OperationalError as exc:
        raise CommandError(f"database unreachable: {' '.join(str(exc).split())}") from None
    except SchemaNotMigratedError as exc:
        raise CommandError(str(exc)) from None
    # A schema migrated by an older release: a table, or a column (sql/010), is missing.
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        first = str(exc).strip().splitlines()[0]
        raise CommandError(
            f"schema {settings.db_schema!r} is not fully migrated ({first}); "
            f"run: {migrate_hint(settings.db_schema)}"
        ) from None
    print(format_status(rows))
    return 0


def format_status(rows: list[Any]) -> str:
    """A fixed-width table; '-' where a value is not known yet; a stalled feed's reason below it."""
    head = ("feed", "last event", "age s", "lag", "rate/s", "dead", "events")
    lines = [
        f"{head[0]:<12} {head[1]:<25} {head[2]:>8} {head[3]:>9} {head[4]:>9} "
        f"{head[5]:>7} {head[6]:>11}"
    ]
    if not rows:
        lines.append("(no feed has been ingested yet)")
    for h in rows:
        age = h.seconds_since_event
        lines.append(
            f"{h.feed:<12} "
            f"{h.last_event_time.isoformat(timespec='seconds') if h.last_event_time else '-':<25} "
            f"{f'{age:.0f}' if age is not None else '-':>8} "
            f"{h.consumer_lag if h.consumer_lag is not None else '-':>9} "
            f"{f'{h.rate_per_s:.1f}' if h.rate_per_s is not None else '-':>9} "
            f"{h.dead_letters:>7} {h.events_total:>11}"
        )
        if h.stall_reason:
            since = h.stalled_since.isoformat(timespec="seconds") if h.stalled_since else "?"
            lines.append(f"  STALLED since {since}: {h.stall_reason}")
    return "\n".join(lines)
