"""Topic step of the data path, in process: a thread-safe in-memory log that stands in for Kafka."""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ioc.core.errors import IocError
from streams.transport.source import SourceRecord, TopicPartition

DEFAULT_PARTITIONS = 3
OffsetReset = Literal["earliest", "latest"]


class BusError(IocError):
    """A misuse of the bus (unknown partition, closed consumer, bad offset)."""


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a keyed message: stable across processes and runs (CRC-32 of the key)."""
    return zlib.crc32(key) % partitions


@dataclass
class _Partition:
    # `start` is the offset of records[0]; it moves forward when retention drops old records.
    start: int = 0
    # Consumers get these very records (immutable), so nothing is copied on the way out.
    records: list[SourceRecord] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.start + len(self.records)


@dataclass
class _Group:
    members: list[int] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    generation: int = 0


class Bus:
    """Append-only logs per topic and partition, with offsets, keyed partitioning and groups.

    `retention` (records per partition, None = keep all) bounds memory on long demo runs.
    """

    def __init__(
        self, *, default_partitions: int = DEFAULT_PARTITIONS, retention: int | None = None
    ) -> None:
        if default_partitions < 1:
            raise BusError("default_partitions must be >= 1")
        if retention is not None and retention < 1:
            raise BusError("retention must be >= 1 record per partition or None")
        self._cond = threading.Condition(threading.Lock())
        self._topics: dict[str, list[_Partition]] = {}
        self._round_robin: dict[str, int] = {}
        self._groups: dict[str, _Group] = {}
        self._member_ids = itertools.count(1)
        self._default_partitions = default_partitions
        self._retention = retention

    # -- topics -------------------------------------------------------------------------
    def create_topic(self, topic: str, partitions: int | None = None) -> int:
        """Create `topic` if missing; returns its partition count (existing topics keep theirs)."""
        with self._cond:
            return len(self._ensure(topic, partitions))

    def topics(self) -> dict[str, int]:
        """Topic name -> partition count."""
        with self._cond:
            return {name: len(parts) for name, parts in self._topics.items()}

    def end_offsets(self, topic: str) -> dict[int, int]:
        """Partition -> the offset the next produced record will get."""
        with self._cond:
            return {i: p.end for i, p in enumerate(self._topics.get(topic, []))}

    def _ensure(self, topic: str, partitions: int | None) -> list[_Partition]:
        parts = self._topics.get(topic)
        if parts is None:
            n = self._default_partitions if partitions is None else partitions
            if n < 1:
                raise BusError(f"topic {topic!r} needs at least one partition")
            parts = [_Partition() for _ in range(n)]
            self._topics[topic] = parts
        return parts

    # -- producing ----------------------------------------------------------------------
    def produce(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        partition: int | None = None,
    ) -> tuple[int, int]:
        """Append one record; returns (partition, offset). Same key -> same partition."""
        with self._cond:
            placed = self._append(topic, value, key, timestamp_ms, partition)
            self._cond.notify_all()
            return placed

    def produce_many(
        self, topic: str, items: Iterable[tuple[bytes | None, bytes]], *, timestamp_ms: int | None
    ) -> int:
        """Append (key, value) pairs under one lock acquisition; returns how many."""
        n = 0
        with self._cond:
            for key, value in items:
                self._append(topic, value, key, timestamp_ms, None)
                n += 1
            self._cond.notify_all()
        return n

    def _append(
        self,
        topic: str,
        value: bytes,
        key: bytes | None,
        timestamp_ms: int | None,
        partition: int | None,
    ) -> tuple[int, int]:
        parts = self._ensure(topic, None)
        if partition is None:
            if key is not None:
                partition = partition_for(key, len(parts))
            else:
                partition = self._round_robin.get(topic, 0) % len(parts)
                self._round_robin[topic] = partition + 1
        elif not 0 <= partition < len(parts):
            raise BusError(f"topic {topic!r} has no partition {partition}")
        part = parts[partition]
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        offset = part.end
        part.records.append(SourceRecord(topic, partition, offset, key, value, ts))
        if self._retention is not None and len(part.records) > self._retention:
            drop = len(part.records) - self._retention
            del part.records[:drop]
            part.start += drop
        return partition, offset

    # -- consuming ----------------------------------------------------------------------
    def consumer(
        self,
        group: str,
        topics: Iterable[str],
        *,
        auto_offset_reset: OffsetReset = "earliest",
    ) -> BusConsumer:
        """A new member of `group` subscribed to `topics` (created if missing)."""
        return BusConsumer(self, group, tuple(topics), auto_offset_reset)

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        """The group's committed offset (next offset to read), or None."""
        with self._cond:
            g = self._groups.get(group)
            return None if g is None else g.committed.get(TopicPartition(topic, partition))

    def _join(self, group: str, topics: tuple[str, ...]) -> int:
        with self._cond:
            for t in topics:
                self._ensure(t, None)
            g = self._groups.setdefault(group, _Group())
            member = next(self._member_ids)
            g.members.append(member)
            g.generation += 1
            return member

    def _leave(self, group: str, member: int) -> None:
        with self._cond:
            g = self._groups.get(group)
            if g is not None and member in g.members:
                g.members.remove(member)
                g.generation += 1
                self._cond.notify_all()


class BusConsumer:
    """One member of a consumer group; not shared between threads (like a Kafka consumer)."""

    def __init__(
        self, bus: Bus, group: str, topics: tuple[str, ...], auto_offset_reset: OffsetReset
    ) -> None:
        if not topics:
            raise BusError("subscribe to at least one topic")
        self._bus = bus
        self.group = group
        self.topics = topics
        self._reset = auto_offset_reset
        self._member = bus._join(group, topics)
        self._generation = -1
        self._assigned: list[TopicPartition] = []
        self._positions: dict[TopicPartition, int] = {}
        self._cursor = 0
        self._closed = False

    def assignment(self) -> list[TopicPartition]:
        """The partitions this member currently owns."""
        with self._bus._cond:
            self._rebalance_locked()
            return list(self._assigned)

    def position(self, topic: str, partition: int) -> int:
        """The next offset this member will read from an assigned partition."""
        with self._bus._cond:
            self._rebalance_locked()
            try:
                return self._positions[TopicPartition(topic, partition)]
            except KeyError:
                raise BusError(f"{topic}[{partition}] is not assigned to this consumer") from None

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read an assigned partition from `offset` next (clamped to what the log still holds)."""
        with self._bus._cond:
            self._rebalance_locked()
            tp = TopicPartition(topic, partition)
            if tp not in self._positions:
                raise BusError(f"{topic}[{partition}] is not assigned to this consumer")
            part = self._bus._topics[topic][partition]
            self._positions[tp] = min(max(offset, part.start), part.end)

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[SourceRecord]:
        """Up to `max_records` records, waiting up to `timeout` seconds for the first one."""
        if max_records < 1:
            raise BusError("max_records must be >= 1")
        deadline = time.monotonic() + max(timeout, 0.0)
        cond = self._bus._cond
        with cond:
            while True:
                if self._closed:
                    raise BusError("consumer is closed")
                self._rebalance_locked()
                out = self._take_locked(max_records)
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                cond.wait(remaining)

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit next-offsets-to-read; None commits the current position of every partition."""
        with self._bus._cond:
            if self._closed:
                raise BusError("consumer is closed")
            self._rebalance_locked()
            todo = dict(self._positions) if offsets is None else dict(offsets)
            group = self._bus._groups[self.group]
            # Unpacked, so that plain (topic, partition) pairs are taken as well.
            for (topic, partition), offset in todo.items():
                parts = self._bus._topics.get(topic)
                if parts is None or not 0 <= partition < len(parts):
                    raise BusError(f"cannot commit unknown partition {topic}[{partition}]")
                if offset < 0 or offset > parts[partition].end:
                    raise BusError(f"offset {offset} is outside {topic}[{partition}]")
                group.committed[TopicPartition(topic, partition)] = offset

    def close(self) -> None:
        """Leave the group; the partitions go to the remaining members."""
        if not self._closed:
            self._closed = True
            self._bus._leave(self.group, self._member)

    def __enter__(self) -> BusConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals (called with the bus lock held) --------------------------------------
    def _rebalance_locked(self) -> None:
        bus = self._bus
        group = bus._groups[self.group]
        if group.generation == self._generation:
            return
        members = sorted(group.members)
        index = members.index(self._member)
        every = [
            TopicPartition(t, p) for t in sorted(self.topics) for p in range(len(bus._topics[t]))
        ]
        # Round-robin over the sorted members, as Kafka's round-robin assignor does.
        self._assigned = [tp for i, tp in enumerate(every) if i % len(members) == index]
        self._positions = {}
        for tp in self._assigned:
            part = bus._topics[tp.topic][tp.partition]
            committed = group.committed.get(tp)
            if committed is None:
                start = part.start if self._reset == "earliest" else part.end
            else:
                start = min(max(committed, part.start), part.end)
            self._positions[tp] = start
        self._generation = group.generation

    def _take_locked(self, max_records: int) -> list[SourceRecord]:
        out: list[SourceRecord] = []
        n = len(self._assigned)
        # Start from a rotating partition so a busy partition cannot starve the others.
        self._cursor = (self._cursor + 1) % n if n else 0
        for j in range(n):
            tp = self._assigned[(self._cursor + j) % n]
            if len(out) >= max_records:
                break
            part = self._bus._topics[tp.topic][tp.partition]
            pos = self._positions[tp]
            if pos < part.start:
                pos = part.start  # retention dropped what we had not read yet
            i = pos - part.start
            chunk = part.records[i : i + (max_records - len(out))]
            if chunk:
                out.extend(chunk)
                self._positions[tp] = pos + len(chunk)
        return out
