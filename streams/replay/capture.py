"""Topic step, captured: the records of feed topics (or of a simulator run) into a recording.

From Kafka, each chosen topic is read from its first to its last offset as of the start (no
consumer group, nothing committed), and the records whose time - event_time, or the Kafka
timestamp for a value that is not an event - falls in [start, end) are kept. Partitions are
merged by that time; each partition keeps its offset order, so every entity's events keep theirs.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.core.contracts import FUTURE_TOLERANCE
from ioc.core.errors import IocError
from streams.replay.recording import Recorded, event_time_ms

log = logging.getLogger("streams.replay.capture")

TopicName = Callable[[str], str]
# (records kept, records read, wall seconds)
Progress = Callable[[int, int, float], None]
SIM_PARTITIONS = 3
FUTURE_TOLERANCE_MS = int(FUTURE_TOLERANCE.total_seconds() * 1000)


class CaptureError(IocError):
    """Kafka could not be read as asked; the message is one line."""


@dataclass(frozen=True)
class Span:
    """[start, end) in epoch milliseconds; None = unbounded."""

    start_ms: int | None = None
    end_ms: int | None = None

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None) -> Span:
        return cls(
            None if start is None else int(start.timestamp() * 1000),
            None if end is None else int(end.timestamp() * 1000),
        )

    def __contains__(self, t: int) -> bool:
        return (self.start_ms is None or t >= self.start_ms) and (
            self.end_ms is None or t < self.end_ms
        )


class Timeline:
    """Places records on the replay timeline: at their event time, unless it is missing or
    further ahead of the Kafka timestamp than producers may drift (poison such as future_time),
    in which case the record rides with the one before it in its partition."""

    def __init__(self) -> None:
        self._last: dict[Any, int] = {}

    def place(self, partition: Any, value: bytes, timestamp_ms: int) -> int:
        t = event_time_ms(value)
        if t is None or t > timestamp_ms + FUTURE_TOLERANCE_MS:
            t = self._last.get(partition, timestamp_ms)
        self._last[partition] = t
        return t


def merge_partitions(parts: Sequence[Sequence[Recorded]]) -> Iterator[Recorded]:
    """Records of several partitions in time order, each partition's own order kept."""
    return heapq.merge(*parts, key=lambda r: r.time_ms)


def capture_kafka(
    bootstrap: str,
    bases: Sequence[str],
    span: Span,
    *,
    topic_name: TopicName,
    progress: Progress | None = None,
    consumer_factory: Callable[..., Any] | None = None,
) -> list[list[Recorded]]:
    """Each partition's records within `span`, in offset order, up to the end at the start."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    from kafka.structs import TopicPartition as KafkaTP

    factory = consumer_factory or KafkaConsumer
    try:
        consumer = factory(
            bootstrap_servers=[b.strip() for b in bootstrap.split(",") if b.strip()],
            group_id=None,
            enable_auto_commit=False,
            client_id="ioc-record",
            max_poll_records=5000,
            fetch_max_bytes=32 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            metrics_enabled=False,
        )
    except KafkaError as exc:
        raise CaptureError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    base_of: dict[str, str] = {}
    tps: list[Any] = []
    try:
        for base in bases:
            name = topic_name(base)
            parts = consumer.partitions_for_topic(name)
            if not parts:
                raise CaptureError(f"topic {name} does not exist on {bootstrap}")
            base_of[name] = base
            tps.extend(KafkaTP(name, p) for p in sorted(parts))
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        consumer.seek_to_beginning(*tps)
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        kept: dict[Any, list[Recorded]] = {tp: [] for tp in tps}
        timeline = Timeline()
        read = n_kept = 0
        wall0 = last = time.monotonic()
        while pending:
            polled = consumer.poll(timeout_ms=1000, max_records=5000)
            for tp, batch in polled.items():
                end = ends[tp]
                out = kept[tp]
                base = base_of[tp.topic]
                for r in batch:
                    if r.offset >= end:
                        pending.discard(tp)
                        break
                    read += 1
                    t = timeline.place(tp, r.value, r.timestamp)
                    if t in span:
                        out.append(
                            Recorded(base, r.partition, r.offset, r.timestamp, r.key, r.value, t)
                        )
                        n_kept += 1
                if consumer.position(tp) >= end:
                    pending.discard(tp)
            now = time.monotonic()
            if progress is not None and now - last >= 1.0:
                progress(n_kept, read, now - wall0)
                last = now
        if progress is not None:
            progress(n_kept, read, time.monotonic() - wall0)
    except KafkaError as exc:
        raise CaptureError(f"reading {', '.join(base_of) or 'topics'} failed: {exc}") from None
    finally:
        consumer.close()
    return [kept[tp] for tp in tps]


def simulator_records(
    items: Iterable[tuple[int, int, str, bytes | None, bytes, str | None]],
    *,
    partitions: int = SIM_PARTITIONS,
) -> Iterator[Recorded]:
    """A simulator run's items as the records a fresh topic of `partitions` would have held:
    Kafka's keyed partition (murmur2), per-partition offsets, timestamp = the item's time."""
    from kafka.partitioner.default import murmur2

    offsets: dict[tuple[str, int], int] = {}
    cache: dict[bytes, int] = {}
    unkeyed = 0
    for t, _index, topic, key, value, _ward in items:
        if key is None:
            p = unkeyed % partitions
            unkeyed += 1
        else:
            cached = cache.get(key)
            if cached is None:
                if len(cache) > 500_000:
                    cache.clear()
                cached = cache[key] = (murmur2(key) & 0x7FFFFFFF) % partitions
            p = cached
        slot = (topic, p)
        offset = offsets.get(slot, 0)
        offsets[slot] = offset + 1
        ms = t * 1000
        yield Recorded(topic, p, offset, ms, key, value, ms)
