"""The whole data path in one process for the demo: simulator -> topic -> consumer -> table ->
query -> callback -> map, on the embedded database and the in-process bus (or real services).

Start order: data directory, database (+ migrations), feeds, dashboard; stop order is the
reverse, so the last batch is committed before the database goes away.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.app.demo.checks import DataDirLock, DemoError, check_data_dir, check_port, redact
from ioc.app.demo.dashboard import Dashboard, dashboard_available, preload, wait_answering
from ioc.app.demo.feeder import (
    BusOffsets,
    CountingSink,
    Durability,
    Feeder,
    FlushedDurability,
    IngestedDurability,
    LiveClock,
)
from ioc.app.demo.plan import DemoState, Plan, load_state, make_plan, save_state
from ioc.app.demo.progress import RateMeter, StatusLine, format_bar
from ioc.app.settings import Settings

log = logging.getLogger("ioc.app.demo")

BUS_GROUP = "ioc-demo"
BUS_RETENTION = 25_000  # records kept per partition: bounds memory on long runs
STATE_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 10.0


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
        self._admin: str | None = None
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
            importing = None
            if opts.dashboard:
                check_port(opts.host, opts.port)
                importing = preload()
            self._log_to_file()
            admin, reader, db_key = self._database()
            self._db_key = db_key
            self._admin = admin
            self._migrate(admin)
            clock = LiveClock(opts.speed)
            plan = self._plan(admin, db_key)
            # Feeds first: regenerating the stream up to the newest hours is the long pole.
            feeder, consumed = self._feeds(admin, plan, clock)
            if opts.dashboard:
                if importing is not None:
                    importing.join()
                self._dashboard(reader, clock)
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
        from ioc.app.demo.embedded import READER_ROLE, EmbeddedError, EmbeddedPostgres

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
        from ioc.core.db.migrate import MigrationError, migrate

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
        from ioc.app.demo.plan import StateError

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
            order = "newest hours first" if len(plan.passes) > 1 else "in time order"
            self.say(f"{plan.reason}: {days:.1f} simulated days to load, {order}")
        else:
            self.say(f"{plan.reason}: history complete, nothing to backfill")
        return plan

    def _feeds(self, admin: str, plan: Plan, clock: LiveClock) -> tuple[Feeder, Callable[[], int]]:
        """Ingest thread and feeder thread over the bus (or Kafka)."""
        from ioc.app.connect import connector
        from ioc.core.citypack import load_pack
        from ioc.core.feeds import FEEDS
        from streams.ingest.loop import IngestOptions, Ingestor, build_routes
        from streams.ingest.writers.registry import WRITERS

        settings = self.settings
        pack = load_pack(settings.city_pack)
        routes = build_routes(FEEDS, WRITERS, settings.topic)
        writer_url = admin if self.opts.database_url else _as_role(admin, "ioc_writer")
        connect = connector(writer_url, settings.db_schema, "ioc-demo-ingest")
        ingest_stop = threading.Event()
        self._ingest_stop = ingest_stop
        source, sink, durability = self._transport(list(routes), ingest_stop)
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
            earliest=settings.earliest_event_time,
        )
        feeder = Feeder(plan, self._items(plan, pack), sink, durability, clock, self.stop)
        self._start("ingest", ingestor.run, lambda: _close_ingest(ingestor, source))
        self._start("simulators", feeder.run, sink.close)
        self._feeder = feeder
        return feeder, lambda: ingestor.totals.records

    def _transport(
        self, topics: list[str], ingest_stop: threading.Event
    ) -> tuple[Any, CountingSink, Durability]:
        """(record source, sink, durability) over Kafka when given, else the in-process bus."""
        if self.opts.kafka_bootstrap:
            from simulators.sinks import KafkaSink, SinkError, feed_topics
            from streams.transport.kafka_source import BrokerUnavailable, KafkaSource

            bootstrap = self.opts.kafka_bootstrap
            try:
                kafka = KafkaSink(bootstrap, topic_name=self.settings.topic)
                kafka.ensure_topics(feed_topics(self.settings.topic))
                source = KafkaSource(
                    bootstrap, self.settings.consumer_group, topics, stop=ingest_stop
                )
            except (SinkError, BrokerUnavailable) as exc:
                raise DemoError(f"Kafka at {bootstrap}: {_one_line(exc)}") from None
            self.say(f"feeds: Kafka at {bootstrap} (group {self.settings.consumer_group})")
            counting = CountingSink(kafka)
            return source, counting, FlushedDurability(counting)
        from simulators.sinks import BusSink
        from streams.transport.bus import Bus
        from streams.transport.bus_source import BusSource

        bus = Bus(retention=BUS_RETENTION)
        for topic in topics:
            bus.create_topic(topic)
        offsets = BusOffsets(bus, BUS_GROUP, topics)
        counting = CountingSink(
            BusSink(bus, topic_name=self.settings.topic), backlog=offsets.backlog, stop=self.stop
        )
        return BusSource(bus, BUS_GROUP, topics), counting, IngestedDurability(offsets)

    def _items(self, plan: Plan, pack: Any) -> Callable[[], Iterator[Any]]:
        from ioc.core.contracts import VN_TZ
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
                if feeder.history_stored() and self._caught_up():
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

    def _caught_up(self) -> bool:
        """With Kafka, "sent" is not "stored": also wait until the consumer reports no lag."""
        if not self.opts.kafka_bootstrap or self._admin is None:
            return True
        return total_lag(self._admin, self.settings.db_schema) == 0

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


def total_lag(admin: str, schema: str) -> int | None:
    """The consumer lag the ingest loop last reported, summed over the feeds (None: unknown)."""
    from psycopg import sql

    query = sql.SQL("SELECT sum(consumer_lag), count(consumer_lag) FROM {}.feed_health").format(
        sql.Identifier(schema)
    )
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error:
        return None
    if row is None or not row[1]:
        return None
    return int(row[0])


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
