"""Consumer step: the Protocol every record source (Kafka or the in-process bus) satisfies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class Record(Protocol):
    """What the ingest loop reads of a message. kafka-python's ConsumerRecord has these, so the
    Kafka sources hand their records over as they are: copying each into a SourceRecord, with
    the loop around it, took about 13 % of a one-process ingest's main thread (py-spy, 400k)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One message as stored by the in-process bus and consumed from it (or made by tests):
    where it is, its raw bytes, and when it was taken (ms since the epoch)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


class TopicPartition(NamedTuple):
    """A topic's partition, the unit of ordering and of committed offsets.

    A named tuple, so that it hashes as fast as the plain (topic, partition) pairs the bus and
    kafka-python use, and equals them.
    """

    topic: str
    partition: int


class RecordSource(Protocol):
    """What the ingest loop needs from a source: poll a batch, commit after the database does."""

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        """Up to max_records new records, waiting at most timeout_s for the first one; raises
        FetchFailed when waiting records cannot be read (the source retries them itself)."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record that everything before each offset (the next one to read) is in the database."""
        ...

    def rewind(self) -> None:
        """Forget uncommitted progress: the next poll starts again at the committed offsets."""
        ...

    def lag(self) -> Mapping[TopicPartition, int] | None:
        """Records not yet consumed per partition, when the source can tell cheaply."""
        ...

    def close(self) -> None:
        """Leave the group and release connections; uncommitted records will be redelivered."""
        ...


class FetchFailed(Exception):  # noqa: N818 - reads better at the call site
    """Records wait that the source cannot hand over: a batch that cannot be fetched or
    decompressed (e.g. a codec missing here). No event is at fault, so nothing becomes a dead
    letter; the source backs off and tries the same offset again (attempt, retry_in_s).
    topic, partition and offset are None when the source cannot tell where it failed."""

    def __init__(
        self,
        reason: str,
        *,
        topic: str | None,
        partition: int | None,
        offset: int | None,
        attempt: int,
        retry_in_s: float,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.attempt = attempt
        self.retry_in_s = retry_in_s

    @property
    def where(self) -> str:
        """`topic=... partition=... offset=...`, or that the partition is not known."""
        if self.topic is None:
            return "topic=? partition=? offset=? (not known)"
        return f"topic={self.topic} partition={self.partition} offset={self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be accepted, with the reason code and a one-line detail."""

    record: Record
    reason: str
    detail: str


def next_offsets(records: Sequence[Record]) -> dict[TopicPartition, int]:
    """The offsets to commit after `records` are stored: one past the last of each partition."""
    # Runs once per record of every batch: plain tuples as keys, TopicPartitions only at the end.
    last: dict[tuple[str, int], int] = {}
    get = last.get
    for r in records:
        key = (r.topic, r.partition)
        if r.offset > get(key, -1):
            last[key] = r.offset
    return {TopicPartition(t, p): off + 1 for (t, p), off in last.items()}


def flatten(polled: Mapping[Any, list[Any]]) -> list[Record]:
    """kafka-python's records of one poll, partition after partition, as they are."""
    if len(polled) == 1:
        return next(iter(polled.values()))
    out: list[Record] = []
    for records in polled.values():
        out += records
    return out
