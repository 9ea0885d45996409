"""Topic -> consumer step for `ioc replay`: choose the target, retime, and - for the in-process
bus, which lives only in this process - run the ingest loop beside it into the database."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ioc.app.settings import Settings
from ioc.core.feeds import BY_NAME
from streams.replay.player import (
    BusTarget,
    KafkaTarget,
    NullTarget,
    Progress,
    ReplayError,
    ReplaySummary,
    Target,
    replay,
)
from streams.replay.recording import Recorded, Recording
from streams.replay.retime import Retimer, shift_to
from streams.transport.patience import Patience

DRAIN_TIMEOUT_S = 600.0


@dataclass
class ReplayResult:
    """What a replay did: the summary, the retiming, and for the bus what was ingested."""

    summary: ReplaySummary
    shift: timedelta | None = None
    retimed: int = 0
    unchanged: int = 0
    ingested: int | None = None
    dead: int = 0


def selected(recording: Recording, feeds: tuple[str, ...]) -> Iterator[Recorded]:
    """The recording's records on the chosen feeds' topics."""
    bases = {BY_NAME[f].topic for f in feeds}
    return (r for r in recording.records() if r.topic in bases)


def run_replay(
    recording: Recording,
    target_name: str,
    settings: Settings,
    *,
    speed: float | None,
    retime: datetime | None,
    feeds: tuple[str, ...],
    stop: threading.Event,
    progress: Progress | None = None,
    bootstrap: str | None = None,
    patience: Patience | None = None,
) -> ReplayResult:
    """Replay onto kafka, bus (with ingest into settings' database) or null. Kafka waits out a
    broker outage with `patience` (default: the settings' kafka_patience, lines on stderr)."""
    records = selected(recording, feeds)
    first = next(records, None)
    if first is None:
        return ReplayResult(ReplaySummary(by_topic={}))
    stream = itertools.chain([first], records)
    retimer = None if retime is None else Retimer(shift_to(first.time_ms, retime))
    if target_name == "bus":
        return _replay_with_bus_ingest(stream, settings, speed, retimer, feeds, stop, progress)
    target: Target
    if target_name == "kafka":
        if bootstrap is None:
            raise ReplayError("no Kafka bootstrap given")
        patience = patience or Patience(seconds=settings.kafka_patience, stop=stop)
        kafka = KafkaTarget(bootstrap, topic_name=settings.topic, patience=patience)
        kafka.ensure_topics(BY_NAME[f].topic for f in feeds)
        target = kafka
    elif target_name == "null":
        target = NullTarget()
    else:
        raise ReplayError(f"unknown target {target_name!r}; use kafka, bus or null")
    try:
        summary = replay(
            stream, target, speed=speed, transform=retimer, stop=stop, progress=progress
        )
    finally:
        target.close()
    return _result(summary, retimer)


def _result(summary: ReplaySummary, retimer: Retimer | None) -> ReplayResult:
    if retimer is None:
        return ReplayResult(summary)
    return ReplayResult(summary, retimer.shift, retimer.retimed, retimer.unchanged)


def _replay_with_bus_ingest(
    stream: Iterator[Recorded],
    settings: Settings,
    speed: float | None,
    retimer: Retimer | None,
    feeds: tuple[str, ...],
    stop: threading.Event,
    progress: Progress | None,
) -> ReplayResult:
    from ioc.core.citypack import load_pack
    from streams.ingest.loop import Ingestor, build_routes
    from streams.ingest.writers.registry import WRITERS
    from streams.transport.bus import Bus
    from streams.transport.bus_source import BusSource

    connect = _writer_connect(settings)
    pack = load_pack(settings.city_pack)
    bus = Bus()
    routes = build_routes([BY_NAME[f] for f in feeds], WRITERS, settings.topic)
    for name in routes:
        bus.create_topic(name)
    source = BusSource(bus, "ioc-replay", list(routes))
    ingest_stop = threading.Event()
    ingestor = Ingestor(
        source, routes, connect, pack, stop=ingest_stop, earliest=settings.earliest_event_time
    )
    failure: list[BaseException] = []

    def ingest() -> None:
        try:
            ingestor.run()
        except BaseException as exc:  # reported by the replaying thread
            failure.append(exc)

    worker = threading.Thread(target=ingest, name="replay-ingest", daemon=True)
    worker.start()
    try:
        summary = replay(
            stream,
            BusTarget(bus, topic_name=settings.topic),
            speed=speed,
            transform=retimer,
            stop=stop,
            progress=progress,
        )
        _drain(lambda: ingestor.totals.records < summary.records, worker, stop)
    finally:
        ingest_stop.set()
        worker.join()
        ingestor.close()
        source.close()
    if failure:
        raise ReplayError(f"ingest from the bus failed: {failure[0]!r}")
    result = _result(summary, retimer)
    result.ingested = ingestor.totals.records
    result.dead = ingestor.totals.dead
    return result


def _drain(behind: Callable[[], bool], worker: threading.Thread, stop: threading.Event) -> None:
    """Until the ingest has stored what was replayed (or died, was stopped, or took too long)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while behind() and worker.is_alive() and not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)


def _writer_connect(settings: Settings) -> Any:
    """A connection factory for the writer role; ReplayError if the schema is not migrated."""
    import psycopg

    from ioc.app.connect import connector, database_url
    from ioc.core.errors import NoDatabaseError

    try:
        url = database_url(settings, "writer")
    except NoDatabaseError as exc:
        raise ReplayError(str(exc)) from None
    connect = connector(url, settings.db_schema, "ioc-replay")
    try:
        with connect() as conn:
            found = conn.execute("SELECT to_regclass('feed_health')").fetchone()
    except psycopg.OperationalError as exc:
        raise ReplayError(f"database unreachable: {' '.join(str(exc).split())}") from None
    if found is None or found[0] is None:
        raise ReplayError(
            f"schema {settings.db_schema!r} has no ingest tables; run `ioc db migrate` first"
        )
    return connect
