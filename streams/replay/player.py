"""Topic step, replayed: recorded records back onto Kafka topics or the in-process bus, paced by
their recorded timing scaled by a speed (or as fast as possible), optionally retimed to now."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ioc.core.errors import IocError
from ioc.core.feeds import BY_TOPIC
from streams.replay.recording import Recorded
from streams.transport.bus import Bus
from streams.transport.patience import Patience

TopicName = Callable[[str], str]
# (records sent, recorded time of the last one in ms, wall seconds since the start)
Progress = Callable[[int, int, float], None]
_SLICE_S = 0.25


class ReplayError(IocError):
    """A target that cannot take the records; the message is one line."""


class Target(Protocol):
    """Where replayed records go."""

    def send(self, rec: Recorded, value: bytes) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class NullTarget:
    """Counts only: paces and retimes without sending anywhere (checks, benchmarks)."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, rec: Recorded, value: bytes) -> None:
        self.sent += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class BusTarget:
    """Into the in-process bus, on the recorded partition (keyed when the topic has fewer)."""

    def __init__(self, bus: Bus, *, topic_name: TopicName, partitions: int = 3) -> None:
        self._bus = bus
        self._topic_name = topic_name
        self._partitions = partitions
        self._names: dict[str, tuple[str, int]] = {}

    def send(self, rec: Recorded, value: bytes) -> None:
        named = self._names.get(rec.topic)
        if named is None:
            name = self._topic_name(rec.topic)
            named = self._names[rec.topic] = (name, self._bus.create_topic(name, self._partitions))
        name, count = named
        partition = rec.partition if 0 <= rec.partition < count else None
        self._bus.produce(name, value, key=rec.key, partition=partition)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class KafkaTarget:
    """Kafka (see transport.producer) onto the recorded partition of each topic, creating missing
    topics with enough partitions; Kafka stamps each record when it is sent. While the broker
    is away, sends wait with `patience` (the replay keeps its place)."""

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_name: TopicName,
        partitions: int = 3,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        patience: Patience | None = None,
    ) -> None:
        from streams.transport.producer import Producer

        self._topic_name = topic_name
        self._partitions = partitions
        self._names: dict[str, tuple[str, int]] = {}
        self._kafka = Producer(
            bootstrap,
            client_id="ioc-replay",
            linger_ms=linger_ms,
            batch_size=batch_size,
            error=ReplayError,
            noun="record",
            patience=patience,
        )

    def ensure_topics(self, bases: Iterable[str]) -> None:
        """Create the missing full-named topics of these base topics."""
        self._kafka.ensure_topics([self._topic_name(b) for b in bases], self._partitions, 1)

    def _named(self, base: str) -> tuple[str, int]:
        named = self._names.get(base)
        if named is None:
            self.ensure_topics([base])
            name = self._topic_name(base)
            named = self._names[base] = (name, self._kafka.partition_count(name))
        return named

    def send(self, rec: Recorded, value: bytes) -> None:
        name, count = self._names.get(rec.topic) or self._named(rec.topic)
        # Unkeyed records are placed by the producer when the recorded partition is missing.
        partition = rec.partition if 0 <= rec.partition < count else None
        self._kafka.send(name, value, rec.key, partition)

    def flush(self) -> None:
        self._kafka.flush()

    def close(self) -> None:
        self._kafka.close()


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
    target: Target,
    *,
    speed: float | None,
    transform: Callable[[bytes], bytes] | None = None,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    progress_every_s: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Send every record; with a speed, record i leaves (t_i - t_0) / speed after the first.

    Recorded times that go backwards (records of different partitions) never make the replay
    wait less than it already has: the timeline only moves forward.
    """
    summary = ReplaySummary(by_topic={})
    by_topic = summary.by_topic
    assert by_topic is not None  # noqa: S101 - set just above
    wall0 = clock()
    next_report = wall0 + progress_every_s
    first: int | None = None
    latest = 0
    send = target.send
    for rec in records:
        t = rec.time_ms
        if first is None:
            first = latest = t
            summary.first_ms = t
        elif t > latest:
            latest = t
        if speed is not None:
            due = wall0 + (latest - first) / 1000.0 / speed
            if due - clock() > 0.05:
                target.flush()  # what is already out is visible while we wait
            if not _wait_until(due, clock, sleep, stop):
                summary.stopped = True
                break
        send(rec, rec.value if transform is None else transform(rec.value))
        summary.records += 1
        by_topic[rec.topic] = by_topic.get(rec.topic, 0) + 1
        summary.last_ms = latest
        if not summary.records & 255:
            if stop is not None and stop.is_set():
                summary.stopped = True
                break
            now = clock()
            if progress is not None and now >= next_report:
                progress(summary.records, latest, now - wall0)
                next_report = now + progress_every_s
    target.flush()
    summary.wall_s = clock() - wall0
    if progress is not None:
        progress(summary.records, latest, summary.wall_s)
    return summary


def _wait_until(
    due: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    stop: threading.Event | None,
) -> bool:
    """Sleep in slices until `due`; False if stop was set meanwhile."""
    while True:
        if stop is not None and stop.is_set():
            return False
        ahead = due - clock()
        if ahead <= 0:
            return True
        pause = min(ahead, _SLICE_S)
        if stop is not None:
            stop.wait(pause)
        else:
            sleep(pause)


def feed_of(topic: str) -> str:
    """The feed name of a base topic (the topic itself when it is not a feed's)."""
    feed = BY_TOPIC.get(topic)
    return feed.name if feed is not None else topic
