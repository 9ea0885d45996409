"""Topic step, captured: the records of feed topics, or of a simulator run, into a recording."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ioc.core.contracts import FUTURE_TOLERANCE
from ioc.core.errors import IocError
from ioc.core.sinks import TopicName
from streams.replay.recording import Recorded, event_time_ms
from streams.transport.kafka_assign import open_consumer, partitions_of

log = logging.getLogger("streams.replay.capture")

# (records kept, records read, wall seconds)
CaptureProgress = Callable[[int, int, float], None]
SIM_PARTITIONS = 3
FUTURE_TOLERANCE_MS = int(FUTURE_TOLERANCE.total_seconds() * 1000)
_POLL_RECORDS = 5000
# Large fetches: a capture reads whole topics as fast as the broker hands them over.
_CAPTURE_CONSUMER: dict[str, Any] = {
    "max_poll_records": _POLL_RECORDS,
    "fetch_max_bytes": 32 * 1024 * 1024,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "metrics_enabled": False,
}
# Keyed partitions remembered, at most: entity keys recur all the time.
_KEYED_CACHE = 500_000


class CaptureError(IocError):
    """Kafka could not be read as asked; the message is one line."""


@dataclass(frozen=True)
class CaptureRange:
    """The record times a capture keeps: [start, end) in epoch milliseconds; None = unbounded."""

    start_ms: int | None = None
    end_ms: int | None = None

    @classmethod
    def of(cls, start: datetime | None, end: datetime | None) -> CaptureRange:
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
    keep: CaptureRange,
    *,
    topic_name: TopicName,
    progress: CaptureProgress | None = None,
    consumer_factory: Callable[..., Any] | None = None,
) -> list[list[Recorded]]:
    """Each partition's records whose time is in `keep`, in offset order, up to the end offset
    it had at the start. No consumer group: nothing is committed."""
    from kafka.errors import KafkaError

    consumer = open_consumer(
        bootstrap,
        group=None,
        client_id="ioc-record",
        error=CaptureError,
        factory=consumer_factory,
        **_CAPTURE_CONSUMER,
    )
    base_of = {topic_name(b): b for b in bases}
    try:
        tps = partitions_of(consumer, base_of, bootstrap, CaptureError)
        reader = _PartitionReader(consumer, tps, base_of, keep)
        reader.read(progress)
    except KafkaError as exc:
        raise CaptureError(f"reading {', '.join(base_of)} failed: {exc}") from None
    finally:
        consumer.close()
    return [reader.kept[tp] for tp in tps]


class _PartitionReader:
    """Reads assigned partitions from their first offset to the end they had when it began."""

    def __init__(
        self, consumer: Any, tps: list[Any], base_of: Mapping[str, str], keep: CaptureRange
    ) -> None:
        self._consumer = consumer
        self._base_of = base_of
        self._keep = keep
        consumer.assign(tps)
        self._ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        consumer.seek_to_beginning(*tps)
        self._pending = {tp for tp in tps if self._ends[tp] > starts[tp]}
        self.kept: dict[Any, list[Recorded]] = {tp: [] for tp in tps}
        self._timeline = Timeline()
        self.read_count = self.kept_count = 0

    def read(self, progress: CaptureProgress | None) -> None:
        """Until every partition has reached its end; progress about once a second."""
        wall0 = last = time.monotonic()
        while self._pending:
            polled = self._consumer.poll(timeout_ms=1000, max_records=_POLL_RECORDS)
            for tp, batch in polled.items():
                self._take(tp, batch)
                # The end may lie past the last record (transaction markers, compaction).
                if self._consumer.position(tp) >= self._ends[tp]:
                    self._pending.discard(tp)
            now = time.monotonic()
            if progress is not None and now - last >= 1.0:
                progress(self.kept_count, self.read_count, now - wall0)
                last = now
        if progress is not None:
            progress(self.kept_count, self.read_count, time.monotonic() - wall0)

    def _take(self, tp: Any, batch: Sequence[Any]) -> None:
        end = self._ends[tp]
        out = self.kept[tp]
        base = self._base_of[tp.topic]
        for r in batch:
            if r.offset >= end:
                self._pending.discard(tp)
                break
            self.read_count += 1
            t = self._timeline.place(tp, r.value, r.timestamp)
            if t in self._keep:
                out.append(Recorded(base, r.partition, r.offset, r.timestamp, r.key, r.value, t))
                self.kept_count += 1


class RecordWriter(Protocol):
    """Where a RecordingSink puts its records (a RecordingWriter, or a list in tests)."""

    def write(self, rec: Recorded) -> None: ...

    def close(self) -> None: ...


class RecordingSink:
    """A Sink into a recording: each message as the record a fresh topic of `partitions` would
    have held - the asked partition, else Kafka's keyed one (murmur2) or round robin - with
    per-partition offsets, and the message's time as its Kafka timestamp and timeline place."""

    def __init__(self, writer: RecordWriter, *, partitions: int = SIM_PARTITIONS) -> None:
        from kafka.partitioner.default import murmur2

        self._murmur2: Callable[[bytes], int] = murmur2
        self._writer = writer
        self._partitions = partitions
        self._offsets: dict[tuple[str, int], int] = {}
        self._keyed: dict[bytes, int] = {}
        self._unkeyed = 0
        self._last_ms = 0
        self.records = 0

    def _partition(self, key: bytes | None) -> int:
        if key is None:
            p = self._unkeyed % self._partitions
            self._unkeyed += 1
            return p
        cached = self._keyed.get(key)
        if cached is None:
            if len(self._keyed) > _KEYED_CACHE:
                self._keyed.clear()
            cached = self._keyed[key] = (self._murmur2(key) & 0x7FFFFFFF) % self._partitions
        return cached

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        if partition is None or not 0 <= partition < self._partitions:
            partition = self._partition(key)
        if time_ms is None:
            # A sender that does not know the time: the event's own, else the previous one's.
            time_ms = event_time_ms(value) or self._last_ms
        self._last_ms = time_ms
        slot = (topic, partition)
        offset = self._offsets.get(slot, 0)
        self._offsets[slot] = offset + 1
        self._writer.write(Recorded(topic, partition, offset, time_ms, key, value, time_ms))
        self.records += 1

    def flush(self) -> None:
        pass  # the writer keeps its buffer until close; a recording is read only once complete

    def close(self) -> None:
        self._writer.close()
