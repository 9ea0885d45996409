"""The whole data path in one process for the demo: simulator -> topic -> consumer -> table ->
query -> callback -> map, on the embedded database and the in-process bus (or real services).

Start order: data directory, database (+ migrations), dashboard, then the feeds; stop order is
the reverse, so the last batch is committed before the database goes away.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.demo.feeder import (
    CountingSink,
    Durability,
    Feeder,
    FlushedDurability,
    IngestedDurability,
    LiveClock,
)
from ioc.demo.plan import DemoState, Plan, load_state, make_plan, save_state
from ioc.demo.progress import RateMeter, StatusLine, format_bar
from ioc.settings import Settings

log = logging.getLogger("ioc.demo")

BUS_RETENTION = 25_000  # records kept per partition: bounds memory on long runs
STATE_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 10.0


class DemoError(Exception):
    """The demo cannot start; the message is one line saying what to do."""


@dataclass(frozen=True)
class DemoOptions:
    """What `ioc demo` was asked for (already resolved against the settings)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8050
    days: float = 7.0
    speed: float = 1.0
    seed: int = 1
    volume_scale: float = 1.0
    database_url: str | None = None
    kafka_bootstrap: str | None = None
    dashboard: bool = True
    threads: int = 8

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


# -- checks before anything starts ------------------------------------------------------------


def check_data_dir(path: Path) -> None:
    """Create it if needed and prove it is writable; DemoError in one line otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemoError(
            f"the data directory {path} is not writable ({exc.strerror or exc}); "
            "choose another with --data-dir DIR or IOC_DATA_DIR"
        ) from None


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when something already listens on the dashboard's port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server will: a port in TIME_WAIT from a previous run is free to take.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"port {port} on {host} is already in use; stop what runs there or "
                    f"choose another port with --port N or IOC_DASHBOARD_PORT"
                ) from None
            raise DemoError(f"cannot use {host}:{port} ({exc.strerror or exc})") from None


class DataDirLock:
    """One demo per data directory at a time (flock, released when the process ends)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "demo.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            other = fh.read().strip() or "?"
            fh.close()
            raise DemoError(
                f"another ioc demo (pid {other}) is using {self.path.parent}; stop it first "
                "or choose another --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def redact(conninfo: str) -> str:
    """A connection string without its password, as a stable key and for display."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable database url>"
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in sorted(parts.items()) if v is not None})


# -- the dashboard ----------------------------------------------------------------------------


class Dashboard:
    """The production app (layouts.app.create_app) behind waitress, in a thread of this process."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime], threads: int) -> None:
        from waitress.server import create_server

        from layouts.app import create_app

        app = create_app(settings, clock=clock)
        try:
            self._server: Any = create_server(
                app.server,
                host=settings.dashboard_host,
                port=settings.dashboard_port,
                threads=threads,
                ident="ioc-dashboard",
            )
        except OSError as exc:
            raise DemoError(
                f"cannot serve the dashboard on {settings.dashboard_host}:"
                f"{settings.dashboard_port} ({exc.strerror or exc}); choose another --port"
            ) from None
        self._thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closing the socket ends the loop
            self._server.run()

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the process is about to exit
            self._server.task_dispatcher.shutdown(timeout=2)
            self._server.close()


def dashboard_available() -> bool:
    """Whether the dashboard package and its server are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("layouts.app", "waitress"))


def wait_answering(url: str, timeout: float, stop: threading.Event) -> bool:
    """Until GET url answers 200 (True), or timeout/stop (False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own http URL
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.1)
    return False


# -- the run ----------------------------------------------------------------------------------


class Demo:
    """Starts everything, prints progress, stops everything on `stop`."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        *,
        out: TextIO = sys.stdout,
        stop: threading.Event | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.opts = options
        self.stop = stop or threading.Event()
        self.status = StatusLine(out)
        self._now = now
        self._cleanups: list[tuple[str, Callable[[], None]]] = []
        self._threads: list[tuple[str, threading.Thread]] = []
        self._feeder: Feeder | None = None
        self._ingest_stop: threading.Event | None = None
        self._db_key = ""
        self._failure: BaseException | None = None
        self.url_printed_at: float | None = None

    def say(self, text: str) -> None:
        self.status.say(f"ioc demo: {text}")

    # -- entry ------------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        opts = self.opts
        check_data_dir(opts.data_dir)
        lock = DataDirLock(opts.data_dir)
        lock.acquire()
        self._cleanups.append(("lock", lock.release))
        try:
            if opts.dashboard:
                check_port(opts.host, opts.port)
            self._log_to_file()
            admin, reader, db_key = self._database()
            self._db_key = db_key
            self._migrate(admin)
            clock = LiveClock(opts.speed)
            if opts.dashboard:
                self._dashboard(reader, clock)
            plan = self._plan(admin, db_key)
            feeder, consumed = self._feeds(admin, plan, clock)
            self._watch(feeder, consumed, plan, db_key, started)
        finally:
            self._shutdown()
        if self._failure is not None:
            raise DemoError(_one_line(self._failure))
        return 0

    # -- steps ------------------------------------------------------------------------------
    def _log_to_file(self) -> None:
        """Details go to <data_dir>/demo.log; the terminal gets the demo's own lines."""
        handler = logging.FileHandler(self.opts.data_dir / "demo.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for noisy in ("kafka", "waitress.queue"):
            logging.getLogger(noisy).setLevel(logging.WARNING)

    def _database(self) -> tuple[str, str, str]:
        """(admin url, reader url, key naming the database) of the embedded or given server."""
        if self.opts.database_url:
            url = self.opts.database_url
            self.say(f"database: {redact(url)}")
            return url, url, f"{redact(url)} schema={self.settings.db_schema}"
        from ioc.demo.embedded import READER_ROLE, EmbeddedError, EmbeddedPostgres

        t0 = time.monotonic()
        try:
            pg = EmbeddedPostgres(self.opts.data_dir, log.info)
            self._cleanups.append(("database", pg.stop))
            pg.start()
        except EmbeddedError as exc:
            raise DemoError(str(exc)) from None
        who = f" as user {pg.run_as.name}" if pg.run_as else ""
        self.say(
            f"embedded PostgreSQL {pg.server_version()} in {pg.root}{who} "
            f"({'created' if pg.initialised_now else 'reused'}, {time.monotonic() - t0:.1f} s)"
        )
        return pg.url(), pg.url(READER_ROLE), f"embedded:{pg.data}"

    def _migrate(self, admin: str) -> None:
        from ioc.db.migrate import MigrationError, migrate

        try:
            result = migrate(admin, schema=self.settings.db_schema)
        except MigrationError as exc:
            raise DemoError(str(exc)) from None
        except psycopg.OperationalError as exc:
            raise DemoError(f"cannot reach the database: {_one_line(exc)}") from None
        if result.applied:
            log.info("migrations applied: %s", result.applied)

    def _dashboard(self, reader: str, clock: LiveClock) -> None:
        if not dashboard_available():
            self.say("the dashboard is not installed; running the pipeline only")
            return
        settings = replace(
            self.settings,
            database_url=reader,
            dashboard_host=self.opts.host,
            dashboard_port=self.opts.port,
            dashboard_debug=False,
        )
        dash = Dashboard(settings, clock.utc_now, self.opts.threads)
        self._cleanups.append(("dashboard", dash.stop))
        url = self.opts.url
        waiter = threading.Thread(target=self._announce, args=(url,), name="announce", daemon=True)
        waiter.start()

    def _announce(self, url: str) -> None:
        if wait_answering(url, 120.0, self.stop):
            self.url_printed_at = time.monotonic()
            self.say(f"dashboard ready at {url}")
        elif not self.stop.is_set():
            self.say(f"the dashboard at {url} does not answer; see {self.opts.data_dir}/demo.log")

    def _plan(self, admin: str, db_key: str) -> Plan:
        from ioc.demo.plan import StateError

        try:
            state = load_state(self.opts.data_dir)
        except StateError as exc:
            raise DemoError(str(exc)) from None
        latest = latest_event_time(admin, self.settings.db_schema)
        plan = make_plan(
            now=int(self._now()),
            days=self.opts.days,
            state=state,
            database=db_key,
            latest_in_db=latest,
            seed=self.opts.seed,
            volume_scale=self.opts.volume_scale,
        )
        days = plan.backfill_seconds / 86_400
        if plan.backfill_seconds:
            order = "most recent day first" if len(plan.passes) > 1 else "in time order"
            self.say(f"{plan.reason}: {days:.1f} simulated days to load, {order}")
        else:
            self.say(f"{plan.reason}: history complete, nothing to backfill")
        return plan

    def _feeds(self, admin: str, plan: Plan, clock: LiveClock) -> tuple[Feeder, Callable[[], int]]:
        """Ingest thread and feeder thread over the bus (or Kafka)."""
        from ioc.citypack import load_pack
        from streams.commands import connector
        from streams.ingest import IngestOptions, Ingestor, build_routes
        from streams.topics import FEEDS
        from streams.writers import WRITERS

        settings = self.settings
        pack = load_pack(settings.city_pack)
        routes = build_routes(FEEDS, WRITERS, settings.topic)
        writer_url = admin if self.opts.database_url else _as_role(admin, "ioc_writer")
        connect = connector(writer_url, settings.db_schema, "ioc-demo-ingest")
        ingest_stop = threading.Event()
        self._ingest_stop = ingest_stop
        source, sink, durability_of = self._transport(list(routes), ingest_stop)
        ingestor = Ingestor(
            source,
            routes,
            connect,
            pack,
            options=IngestOptions(log_every_s=30.0),
            stop=ingest_stop,
            # Accelerated live time runs ahead of the wall clock; events are not "from the
            # future" for the demo's own consumer.
            wallclock=lambda: datetime.fromtimestamp(max(clock.now(), time.time()), UTC),
        )

        def consumed() -> int:
            return ingestor.totals.records

        counting = CountingSink(
            sink, consumed=consumed if self.opts.kafka_bootstrap is None else None, stop=self.stop
        )
        durability = durability_of(counting, consumed)
        feeder = Feeder(plan, self._items(plan, pack), counting, durability, clock, self.stop)
        self._start("ingest", ingestor.run, lambda: _close_ingest(ingestor, source))
        self._start("simulators", feeder.run, counting.close)
        self._feeder = feeder
        return feeder, consumed

    def _transport(
        self, topics: list[str], ingest_stop: threading.Event
    ) -> tuple[Any, Any, Callable[[CountingSink, Callable[[], int]], Durability]]:
        if self.opts.kafka_bootstrap:
            from simulators.sinks import KafkaSink, SinkError, feed_topics
            from streams.kafka_source import BrokerUnavailable, KafkaSource

            bootstrap = self.opts.kafka_bootstrap
            try:
                sink = KafkaSink(bootstrap, topic_name=self.settings.topic)
                sink.ensure_topics(feed_topics(self.settings.topic))
                source = KafkaSource(
                    bootstrap, self.settings.consumer_group, topics, stop=ingest_stop
                )
            except (SinkError, BrokerUnavailable) as exc:
                raise DemoError(f"Kafka at {bootstrap}: {_one_line(exc)}") from None
            self.say(f"feeds: Kafka at {bootstrap} (group {self.settings.consumer_group})")
            return source, sink, lambda counting, _consumed: FlushedDurability(counting)
        from simulators.sinks import BusSink
        from streams.bus import Bus
        from streams.bus_source import BusSource

        bus = Bus(retention=BUS_RETENTION)
        for topic in topics:
            bus.create_topic(topic)
        bus_source = BusSource(bus, "ioc-demo", topics)
        bus_sink = BusSink(bus, topic_name=self.settings.topic)
        return bus_source, bus_sink, IngestedDurability

    def _items(self, plan: Plan, pack: Any) -> Callable[[], Iterator[Any]]:
        from ioc.contracts import VN_TZ
        from simulators.engine import SimConfig, generate
        from simulators.params import SimParams

        params = replace(SimParams(), volume_scale=plan.stream.volume_scale)
        config = SimConfig(
            start=datetime.fromtimestamp(plan.stream.start, VN_TZ),
            duration=None,
            seed=plan.stream.seed,
            params=params,
        )
        return lambda: generate(config, pack)

    def _start(self, name: str, target: Callable[[], object], cleanup: Callable[[], None]) -> None:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the watcher, which stops the demo
                log.exception("%s failed", name)
                self._failure = exc
                self.stop.set()

        thread = threading.Thread(target=body, name=name, daemon=True)
        self._threads.append((name, thread))
        self._cleanups.append((name, cleanup))
        thread.start()

    # -- watching ---------------------------------------------------------------------------
    def _watch(
        self, feeder: Feeder, consumed: Callable[[], int], plan: Plan, db_key: str, t0: float
    ) -> None:
        meter = RateMeter()
        next_save = time.monotonic() + STATE_EVERY_S
        history_reported = plan.backfill_seconds == 0
        if history_reported:
            self.say(f"live ({self._pace()}); Ctrl-C stops")
        while not self.stop.wait(0.5):
            n = consumed()
            rate = meter.add(n)
            p = feeder.progress
            if not history_reported:
                if (p.live or p.finished) and n >= feeder.sent:
                    self.status.say(format_bar(p.backfill_total_s, p.backfill_total_s, n, rate))
                    self.say(
                        f"history loaded: {n:,} events in {time.monotonic() - t0:.0f} s; "
                        f"live ({self._pace()}); Ctrl-C stops"
                    )
                    history_reported = True
                else:
                    self.status.show(format_bar(p.backfill_emitted_s, p.backfill_total_s, n, rate))
            if time.monotonic() >= next_save:
                self._save(plan, db_key, feeder)
                next_save = time.monotonic() + STATE_EVERY_S

    def _pace(self) -> str:
        return "real time" if self.opts.speed == 1 else f"x{self.opts.speed:g}"

    def _save(self, plan: Plan, db_key: str, feeder: Feeder) -> None:
        with contextlib.suppress(OSError):
            save_state(self.opts.data_dir, DemoState(db_key, plan.stream, feeder.stored()))

    # -- stopping ---------------------------------------------------------------------------
    def _shutdown(self) -> None:
        self.stop.set()
        self.status.end()
        threads = dict(self._threads)
        feeder_thread = threads.get("simulators")
        if feeder_thread is not None:
            feeder_thread.join(10)
            self._drain()
        ingest_stop = self._ingest_stop
        if ingest_stop is not None:
            ingest_stop.set()
            ingest = threads.get("ingest")
            if ingest is not None:
                ingest.join(30)
        feeder = self._feeder
        if feeder is not None:
            self._save(feeder.plan, self._db_key, feeder)
        for name, cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep stopping the rest
                log.warning("stopping %s: %s", name, _one_line(exc))
        self._cleanups.clear()

    def _drain(self) -> None:
        """Give the consumer a moment to store what the simulators already sent."""
        feeder = self._feeder
        if feeder is None or self.opts.kafka_bootstrap:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not feeder.settled():
            time.sleep(0.05)


def _close_ingest(ingestor: Any, source: Any) -> None:
    try:
        ingestor.close()
    finally:
        source.close()


def _as_role(conninfo: str, role: str) -> str:
    parts = conninfo_to_dict(conninfo)
    parts["user"] = role
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})


def latest_event_time(admin: str, schema: str) -> int | None:
    """The newest event time any feed has stored (feed_health), in epoch seconds."""
    from psycopg import sql

    query = sql.SQL("SELECT max(last_event_time) FROM {}.feed_health").format(
        sql.Identifier(schema)
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    if row is None or row[0] is None:
        return None
    value: datetime = row[0]
    return int(value.timestamp())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
