"""Topic -> consumer step of `ioc replay`: retime, replay into a sink, or the bus with ingest."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ioc.core.feeds import BY_NAME
from ioc.core.sinks import Sink
from streams.ingest.setup import IngestSetup
from streams.replay.player import ReplayError, ReplayProgress, ReplaySummary, replay
from streams.replay.recording import Recorded, Recording
from streams.replay.retime import Retimer, shift_to

DRAIN_TIMEOUT_S = 600.0
_BUS_GROUP = "ioc-replay"


@dataclass
class ReplayResult:
    """What a replay did: the summary, the retiming, and for the bus what was ingested."""

    summary: ReplaySummary
    shift: timedelta | None = None
    retimed: int = 0
    unchanged: int = 0
    ingested: int | None = None
    dead: int = 0


@dataclass(frozen=True)
class ReplayRequest:
    """Which records, how fast, retimed to when, and the event that stops the replay early."""

    feeds: tuple[str, ...]
    speed: float | None
    retime: datetime | None
    stop: threading.Event
    progress: ReplayProgress | None = None


def selected(recording: Recording, feeds: tuple[str, ...]) -> Iterator[Recorded]:
    """The recording's records on the chosen feeds' topics."""
    bases = {BY_NAME[f].topic for f in feeds}
    return (r for r in recording.records() if r.topic in bases)


def _prepared(
    recording: Recording, ask: ReplayRequest
) -> tuple[Iterator[Recorded], Retimer | None] | None:
    """The chosen records and the retimer that moves the first to `ask.retime`; None if none."""
    records = selected(recording, ask.feeds)
    first = next(records, None)
    if first is None:
        return None
    retimer = None if ask.retime is None else Retimer(shift_to(first.time_ms, ask.retime))
    return itertools.chain([first], records), retimer


def _result(summary: ReplaySummary, retimer: Retimer | None) -> ReplayResult:
    if retimer is None:
        return ReplayResult(summary)
    return ReplayResult(summary, retimer.shift, retimer.retimed, retimer.unchanged)


def run_replay(
    recording: Recording, open_sink: Callable[[], Sink], ask: ReplayRequest
) -> ReplayResult:
    """Replay the chosen records into the sink the application chose (Kafka, or none), opened
    only once there is something to replay, and close it."""
    prepared = _prepared(recording, ask)
    if prepared is None:
        return ReplayResult(ReplaySummary(by_topic={}))
    stream, retimer = prepared
    sink = open_sink()
    try:
        summary = replay(
            stream, sink, speed=ask.speed, transform=retimer, stop=ask.stop, progress=ask.progress
        )
    finally:
        sink.close()
    return _result(summary, retimer)


def run_replay_ingesting(
    recording: Recording, into: IngestSetup, ask: ReplayRequest
) -> ReplayResult:
    """Replay into an in-process bus, which lives only in this process, and run the ingest loop
    beside it into the database of `into`, until it has stored what was replayed."""
    from streams.transport.bus import Bus
    from streams.transport.bus_source import BusSource
    from streams.transport.sinks import BusSink

    prepared = _prepared(recording, ask)
    if prepared is None:
        return ReplayResult(ReplaySummary(by_topic={}))
    stream, retimer = prepared
    bus = Bus()
    routes = into.routes([BY_NAME[f] for f in ask.feeds])
    for name in routes:
        bus.create_topic(name)
    source = BusSource(bus, _BUS_GROUP, list(routes))
    ingest_stop = threading.Event()
    ingestor = into.ingestor(source, routes, stop=ingest_stop)
    failure: list[BaseException] = []

    def ingest() -> None:
        try:
            ingestor.run()
        except BaseException as exc:  # reported by the replaying thread
            failure.append(exc)

    worker = threading.Thread(target=ingest, name="replay-ingest", daemon=True)
    worker.start()
    try:
        sink = BusSink(bus, topic_name=into.topic_name)
        summary = replay(
            stream, sink, speed=ask.speed, transform=retimer, stop=ask.stop, progress=ask.progress
        )
        _drain(lambda: ingestor.totals.records < summary.records, worker, ask.stop)
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
