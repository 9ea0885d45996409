"""Consumer step, in process: a RecordSource over the in-memory bus that stands in for Kafka."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streams.transport.bus import Bus
from streams.transport.source import SourceRecord, TopicPartition


class BusSource:
    """One member of `group` on `bus`, subscribed to `topics`, reading from the earliest offset."""

    def __init__(self, bus: Bus, group: str, topics: Iterable[str]) -> None:
        self._bus = bus
        self._group = group
        self._consumer = bus.consumer(group, topics, auto_offset_reset="earliest")

    def poll(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        """Up to max_records records, waiting at most timeout_s for the first."""
        return self._consumer.poll(max_records=max_records, timeout=timeout_s)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit next-offsets for the group."""
        if offsets:
            self._consumer.commit(offsets)

    def rewind(self) -> None:
        """Seek every assigned partition back to the committed offset (or the log's start)."""
        for topic, partition in self._consumer.assignment():
            committed = self._bus.committed(self._group, topic, partition)
            # seek clamps to what the log still holds, so 0 means "the earliest retained".
            self._consumer.seek(topic, partition, 0 if committed is None else committed)

    def lag(self) -> Mapping[TopicPartition, int] | None:
        """End offset minus position of each assigned partition (exact and cheap in memory)."""
        out: dict[TopicPartition, int] = {}
        ends: dict[str, dict[int, int]] = {}
        for tp in self._consumer.assignment():
            end = ends.setdefault(tp.topic, self._bus.end_offsets(tp.topic)).get(tp.partition, 0)
            out[tp] = max(0, end - self._consumer.position(tp.topic, tp.partition))
        return out

    def close(self) -> None:
        self._consumer.close()
