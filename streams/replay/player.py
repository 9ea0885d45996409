"""Topic step, replayed: recorded records into a sink, paced by their recorded timing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ioc.core.errors import IocError
from ioc.core.feeds import BY_TOPIC
from ioc.core.pacing import PacingClock
from ioc.core.sinks import Sink
from streams.replay.recording import Recorded

# (records sent, recorded time of the last one in ms, wall seconds since the start)
ReplayProgress = Callable[[int, int, float], None]
# A flush costs a broker round trip: only worth it before a wait longer than this.
_FLUSH_BEFORE_WAIT_S = 0.05


class ReplayError(IocError):
    """A replay that cannot go ahead as asked; the message is one line."""


@dataclass
class ReplaySummary:
    """What a replay sent."""

    records: int = 0
    by_topic: dict[str, int] | None = None
    first_ms: int | None = None
    last_ms: int | None = None
    wall_s: float = 0.0
    stopped: bool = False

    def rate(self) -> float:
        return self.records / self.wall_s if self.wall_s > 0 else 0.0


def replay(
    records: Iterable[Recorded],
    sink: Sink,
    *,
    speed: float | None,
    transform: Callable[[bytes], bytes] | None = None,
    stop: threading.Event | None = None,
    progress: ReplayProgress | None = None,
    progress_every_s: float = 1.0,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Send every record, on its recorded partition, paced by a PacingClock that starts at the
    first record: with a speed, record i leaves (t_i - t_0) / speed after the first.

    Recorded times that go backwards (records of different partitions) never make the replay
    wait less than it already has: the timeline only moves forward.
    """
    summary = ReplaySummary(by_topic={})
    by_topic: dict[str, int] = {}
    summary.by_topic = by_topic
    wall0 = monotonic()
    next_report = wall0 + progress_every_s
    clock: PacingClock | None = None
    paced = speed is not None  # a local, not clock.fast: this loop runs once per record
    latest = 0
    send = sink.send
    for rec in records:
        t = rec.time_ms
        if clock is None:
            clock = PacingClock(t / 1000.0, speed, monotonic=monotonic, sleep=sleep)
            latest = summary.first_ms = t
        elif t > latest:
            latest = t
        if paced and not _paced(clock, latest, sink, stop):
            summary.stopped = True
            break
        value = rec.value if transform is None else transform(rec.value)
        send(rec.topic, rec.key, value, rec.partition, t)
        summary.records += 1
        by_topic[rec.topic] = by_topic.get(rec.topic, 0) + 1
        summary.last_ms = latest
        if not summary.records & 255:
            if stop is not None and stop.is_set():
                summary.stopped = True
                break
            now = monotonic()
            if progress is not None and now >= next_report:
                progress(summary.records, latest, now - wall0)
                next_report = now + progress_every_s
    sink.flush()
    summary.wall_s = monotonic() - wall0
    if progress is not None:
        progress(summary.records, latest, summary.wall_s)
    return summary


def _paced(clock: PacingClock, latest_ms: int, sink: Sink, stop: threading.Event | None) -> bool:
    """Wait until the recorded time `latest_ms` is due; False if stop was set meanwhile."""
    t = latest_ms / 1000.0
    if clock.ahead(t) > _FLUSH_BEFORE_WAIT_S:
        sink.flush()  # what is already out is visible while we wait
    return clock.wait_until(t, stop)


def feed_of(topic: str) -> str:
    """The feed name of a base topic (the topic itself when it is not a feed's)."""
    feed = BY_TOPIC.get(topic)
    return feed.name if feed is not None else topic
