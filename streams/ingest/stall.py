"""Consumer step: which partitions this member cannot read now, and why (for the health rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.transport.source import FetchFailed, Record, TopicPartition

# The key of a stall whose partition the source could not name: it stalls every feed.
UNKNOWN = ("", -1)


@dataclass
class Stall:
    """Records wait at `offset` of a partition and cannot be read; `failures` so far."""

    topic: str | None
    partition: int | None
    offset: int | None
    reason: str
    failures: int
    since: float

    @property
    def text(self) -> str:
        """The reason as the health row and the wall show it (one line)."""
        if self.topic is None:
            return f"cannot read from the broker: {self.reason}"
        return f"cannot read {self.topic}[{self.partition}] at offset {self.offset}: {self.reason}"


class Stalls:
    """Stalled partitions, from a FetchFailed until a record at or past the failed offset is read,
    or the partition is no longer this member's, or nothing waits there any more."""

    def __init__(self) -> None:
        self._by_tp: dict[tuple[str, int], Stall] = {}

    def __bool__(self) -> bool:
        return bool(self._by_tp)

    def __len__(self) -> int:
        return len(self._by_tp)

    def failed(self, exc: FetchFailed, now: float) -> Stall:
        """Record one more failure of the partition `exc` names; the stall it is part of."""
        key = UNKNOWN if exc.topic is None else (exc.topic, exc.partition or 0)
        stall = self._by_tp.get(key)
        if stall is None:
            stall = Stall(exc.topic, exc.partition, exc.offset, exc.reason, 0, now)
            self._by_tp[key] = stall
        stall.failures += 1
        stall.reason = exc.reason
        stall.offset = exc.offset
        return stall

    def read(self, records: Sequence[Record]) -> list[Stall]:
        """Stalls that `records` (one poll) end: the stalled partition is readable again."""
        if not self._by_tp or not records:
            return []
        done = [self._by_tp.pop(UNKNOWN)] if UNKNOWN in self._by_tp else []
        if not self._by_tp:
            return done
        last: dict[tuple[str, int], int] = {}
        for r in records:
            key = (r.topic, r.partition)
            if key in self._by_tp and r.offset > last.get(key, -1):
                last[key] = r.offset
        for key, offset in last.items():
            if offset >= (self._by_tp[key].offset or 0):
                done.append(self._by_tp.pop(key))
        return done

    def settle(self, lag: Mapping[TopicPartition, int] | None) -> list[Stall]:
        """Stalls of partitions this member no longer holds, or where nothing waits now."""
        if lag is None or not self._by_tp:
            return []
        held = {(tp.topic, tp.partition): n for tp, n in lag.items()}
        gone = [k for k in self._by_tp if k != UNKNOWN and held.get(k, 0) == 0]
        return [self._by_tp.pop(k) for k in gone]

    def by_topic(self, topics: Sequence[str]) -> dict[str, str]:
        """Topic -> the reason of its oldest stall (an unknown partition stalls all `topics`)."""
        out: dict[str, str] = {}
        for stall in sorted(self._by_tp.values(), key=lambda s: s.since):
            for topic in topics if stall.topic is None else (stall.topic,):
                out.setdefault(topic, stall.text)
        return out


def failure_line(exc: FetchFailed) -> str:
    """The one log line of a failed fetch: where, why, and when the next attempt comes."""
    what = "partition paused" if exc.topic is not None else "consumer replaced"
    return (
        f"ingest: cannot read {exc.where}: {exc.reason}; no event is at fault, nothing "
        f"dead-lettered; {what}, retry {exc.attempt} in {exc.retry_in_s:.1f} s"
    )
