"""The whole data path in one process for the demo: simulator -> topic -> consumer -> table ->
query -> callback -> map, on the embedded database and the in-process bus (or real services).

This module owns the order: start data directory, database (+ migrations), feeds, dashboard;
watch and report progress; stop in the reverse order, so the last batch is committed before the
database goes away. Each step's parts live beside it (database, pipeline, feeder, dashboard).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

from ioc.app.demo.checks import (
    DataDirLock,
    DemoError,
    check_data_dir,
    check_port,
    one_line,
    redact,
)
from ioc.app.demo.dashboard import Dashboard, dashboard_available, preload, wait_answering
from ioc.app.demo.database import (
    Database,
    embedded_database,
    given_database,
    latest_event_time,
    migrate_database,
    total_lag,
)
from ioc.app.demo.feeder import Feeder, LiveClock
from ioc.app.demo.pipeline import (
    Transport,
    build_ingestor,
    bus_transport,
    close_ingest,
    kafka_transport,
    stream_items,
)
from ioc.app.demo.plan import DemoState, Plan, StateError, load_state, make_plan, save_state
from ioc.app.demo.progress import RateMeter, StatusLine, format_bar
from ioc.app.settings import Settings
from ioc.core.citypack import load_pack
from ioc.core.feeds import FEEDS
from streams.ingest.loop import build_routes
from streams.ingest.writers.registry import WRITERS

log = logging.getLogger("ioc.app.demo")

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
            db = self._database()
            self._db_key = db.key
            self._admin = db.admin
            migrate_database(db.admin, self.settings.db_schema)
            clock = LiveClock(opts.speed)
            plan = self._plan(db)
            # Feeds first: regenerating the stream up to the newest hours is the long pole.
            feeder, consumed = self._feeds(db, plan, clock)
            if opts.dashboard:
                if importing is not None:
                    importing.join()
                self._dashboard(db.reader, clock)
            self._watch(feeder, consumed, plan, db.key, started)
        finally:
            self._shutdown()
        if self._failure is not None:
            raise DemoError(one_line(self._failure))
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

    def _database(self) -> Database:
        """The server the user gave, else the embedded one (stopped last, by the cleanups)."""
        url = self.opts.database_url
        if url:
            self.say(f"database: {redact(url)}")
            return given_database(url, self.settings.db_schema)
        return embedded_database(
            self.opts.data_dir, self.say, lambda stop: self._cleanups.append(("database", stop))
        )

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

    def _plan(self, db: Database) -> Plan:
        try:
            state = load_state(self.opts.data_dir)
        except StateError as exc:
            raise DemoError(str(exc)) from None
        latest = latest_event_time(db.admin, self.settings.db_schema)
        plan = make_plan(
            now=int(self._now()),
            days=self.opts.days,
            state=state,
            database=db.key,
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

    def _feeds(
        self, db: Database, plan: Plan, clock: LiveClock
    ) -> tuple[Feeder, Callable[[], int]]:
        """Ingest thread and feeder thread over the bus (or Kafka)."""
        settings = self.settings
        pack = load_pack(settings.city_pack)
        routes = build_routes(FEEDS, WRITERS, settings.topic)
        ingest_stop = threading.Event()
        self._ingest_stop = ingest_stop
        transport = self._transport(list(routes), ingest_stop)
        source, sink = transport.source, transport.sink
        ingestor = build_ingestor(source, routes, db.writer, settings, pack, clock, ingest_stop)
        items = stream_items(plan, pack)
        feeder = Feeder(plan, items, sink, transport.durability, clock, self.stop)
        self._start("ingest", ingestor.run, lambda: close_ingest(ingestor, source))
        self._start("simulators", feeder.run, sink.close)
        self._feeder = feeder
        return feeder, lambda: ingestor.totals.records

    def _transport(self, topics: list[str], ingest_stop: threading.Event) -> Transport:
        """Over Kafka when given, else the in-process bus."""
        bootstrap = self.opts.kafka_bootstrap
        if not bootstrap:
            return bus_transport(self.settings, topics, self.stop)
        transport = kafka_transport(bootstrap, self.settings, topics, ingest_stop)
        self.say(f"feeds: Kafka at {bootstrap} (group {self.settings.consumer_group})")
        return transport

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
                log.warning("stopping %s: %s", name, one_line(exc))
        self._cleanups.clear()

    def _drain(self) -> None:
        """Give the consumer a moment to store what the simulators already sent."""
        feeder = self._feeder
        if feeder is None or self.opts.kafka_bootstrap:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline and not feeder.settled():
            time.sleep(0.05)
