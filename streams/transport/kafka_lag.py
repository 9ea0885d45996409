"""Consumer step: lag per partition, the broker's end offset minus this group's committed one."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kafka.errors import KafkaError
from kafka.structs import TopicPartition as KafkaTP

from streams.transport.source import TopicPartition

log = logging.getLogger("streams.transport.kafka_lag")

# End offsets are asked of the broker at most this often (one ListOffsets request for all the
# member's partitions); between two asks the last fetch's high watermark keeps them current.
LAG_CACHE_S = 3.0
END_OFFSETS_TIMEOUT_MS = 2000
COMMITTED_TIMEOUT_MS = 1000


class CommittedLag:
    """Records not yet in the database, per assigned partition, or None when not known.

    Measured against the committed offset, not the consumer's position: records that were
    fetched but are not stored (a batch in flight, or one that cannot be decompressed) still
    wait, and a lag of 0 must mean that nothing does. The committed offsets are this source's
    own commits, or asked of the broker once per partition and assignment.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._committed: dict[KafkaTP, int] = {}
        self._ends: dict[KafkaTP, int] | None = None
        self._ends_at = float("-inf")

    def committed(self, offsets: Mapping[KafkaTP, int]) -> None:
        """Offsets this source has just committed (next offset to read, per partition)."""
        self._committed.update(offsets)

    def forget(self, partitions: Iterable[KafkaTP] | None = None) -> None:
        """After a rebalance or a new consumer: another member may have committed meanwhile."""
        self._ends_at = float("-inf")  # ask again at the next call, not up to 3 s later
        if partitions is None:
            self._committed.clear()
            return
        for tp in partitions:
            self._committed.pop(tp, None)

    def lag(self, consumer: Any) -> dict[TopicPartition, int] | None:
        """Lag of every partition assigned to `consumer`; None if any one is not known."""
        assigned = consumer.assignment()
        if not assigned:
            return None
        if self._clock() - self._ends_at >= LAG_CACHE_S:
            self._refresh(consumer, assigned)
        if self._ends is None:
            return None
        out: dict[TopicPartition, int] = {}
        for tp in assigned:
            end, done = self._ends.get(tp), self._committed.get(tp)
            if end is None or done is None:
                return None
            high = consumer.highwater(tp)
            if high is not None and high > end:
                end = high
            out[TopicPartition(tp.topic, tp.partition)] = max(0, end - done)
        return out

    def _refresh(self, consumer: Any, assigned: set[KafkaTP]) -> None:
        self._ends_at = self._clock()
        try:
            ends = consumer.end_offsets(list(assigned), timeout_ms=END_OFFSETS_TIMEOUT_MS)
            never: list[KafkaTP] = []
            for tp in assigned:
                if tp in self._committed:
                    continue
                off = consumer.committed(tp, timeout_ms=COMMITTED_TIMEOUT_MS)
                if off is None:
                    never.append(tp)
                else:
                    self._committed[tp] = off
            if never:
                # Nothing committed yet: the group starts at the beginning (auto_offset_reset).
                starts = consumer.beginning_offsets(never, timeout_ms=END_OFFSETS_TIMEOUT_MS)
                self._committed.update(starts)
        except KafkaError as exc:
            log.debug("kafka: lag unknown (%s)", exc)
            self._ends = None
            return
        self._ends = dict(ends)
