"""Consumer step: Kafka batches that cannot be read, where they are, and when to try again."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka.structs import TopicPartition as KafkaTP

from streams.transport.backoff import Backoff
from streams.transport.source import FetchFailed

# A missing codec or a corrupt batch is not fixed in a second: back off to a retry every 15 s
# (one fetch of at most 1 MB and one log line each), but try soon after a short hiccup.
FETCH_RETRY_INITIAL_S = 1.0
FETCH_RETRY_CAP_S = 15.0
REASON_CHARS = 300


def _backoff() -> Backoff:
    return Backoff(initial_s=FETCH_RETRY_INITIAL_S, cap_s=FETCH_RETRY_CAP_S)


@dataclass
class _Retry:
    backoff: Backoff = field(default_factory=_backoff)
    due: float = 0.0
    paused: bool = False


def reason_of(exc: BaseException) -> str:
    """`Type: message` on one bounded line (kafka-python's errors name their type already)."""
    name = type(exc).__name__
    text = " ".join(str(exc).split())
    if not text.startswith(name):
        text = f"{name}: {text}" if text else name
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 3] + "..."


def broken_records(consumer: Any) -> Any | None:
    """kafka-python's records of the partition whose unpacking just raised, if it can tell.

    kafka-python 3.0 keeps that partition's dead record iterator as the next one to read, and
    every later poll spins on it forever (busy, never returning). Its topic_partition and
    next_fetch_offset say where the unreadable batch is; draining it lets the others flow.
    Not public API: anything unexpected means "not known" and the caller reopens the consumer.
    """
    part = getattr(getattr(consumer, "_fetcher", None), "_next_partition_records", None)
    if not part:  # None, or already drained (falsy)
        return None
    tp = getattr(part, "topic_partition", None)
    offset = getattr(part, "next_fetch_offset", None)
    if not isinstance(tp, KafkaTP) or not isinstance(offset, int) or not hasattr(part, "drain"):
        return None
    return part


class FetchRetries:
    """Failed partitions are paused, each with its own backoff, so the member keeps reading the
    others; a failure that names no partition reopens the whole consumer after its backoff."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_tp: dict[KafkaTP, _Retry] = {}
        self._whole = _Retry()
        self._reopen = False

    def failed(self, consumer: Any, exc: BaseException) -> FetchFailed:
        """Pause the partition `exc` came from (or plan a new consumer); what to report."""
        reason = reason_of(exc)
        part = broken_records(consumer)
        if part is None:
            retry = self._whole
            self._reopen = True
            where: dict[str, Any] = {"topic": None, "partition": None, "offset": None}
        else:
            tp, offset = part.topic_partition, part.next_fetch_offset
            part.drain()
            consumer.pause(tp)
            retry = self._by_tp.setdefault(tp, _Retry())
            retry.paused = True
            where = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        delay = retry.backoff.next_delay()
        retry.due = self._clock() + delay
        return FetchFailed(reason, attempt=retry.backoff.attempts, retry_in_s=delay, **where)

    def reopen_in(self) -> float | None:
        """Seconds until the consumer must be replaced (0: now), or None if it need not be."""
        if not self._reopen:
            return None
        return max(0.0, self._whole.due - self._clock())

    def reopened(self) -> None:
        """A new consumer has replaced the old one: nothing of the old one is paused."""
        self._reopen = False
        self._by_tp.clear()

    def resume_due(self, consumer: Any) -> None:
        """Resume the paused partitions whose retry time has come (and that are still ours)."""
        if not self._by_tp:
            return
        now = self._clock()
        assigned = consumer.assignment()
        for tp, retry in self._by_tp.items():
            if retry.paused and now >= retry.due:
                retry.paused = False
                if tp in assigned:
                    consumer.resume(tp)

    def read(self, polled: Mapping[KafkaTP, Any]) -> None:
        """A poll returned records: their partitions, and the consumer, read fine again."""
        self._whole.backoff.reset()
        for tp in polled:
            self._by_tp.pop(tp, None)
