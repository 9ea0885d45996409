"""Consumer step: a RecordSource over a kafka-python consumer group, committing only on request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTP

from streams.backoff import Backoff
from streams.source import Record, TopicPartition, flatten

log = logging.getLogger("streams.kafka_source")

# Tuned for throughput without hurting latency: large polls and a short broker wait, so a
# trickle of events is still delivered within ~50 ms. Fetches of 1 MB per partition and 8 MB in
# all read as fast as 4 MB and 32 MB did and keep less in memory (peak RSS of `ioc ingest` on
# 1 M events 290 -> 167 MB; of a bare read 205 -> 110 MB).
CONSUMER_TUNING: dict[str, Any] = {
    "max_poll_records": 10_000,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 50,
    "max_partition_fetch_bytes": 1024 * 1024,
    "fetch_max_bytes": 8 * 1024 * 1024,
    "receive_buffer_bytes": 1024 * 1024,
    # A database outage holds one batch while retrying; stay in the group meanwhile.
    "max_poll_interval_ms": 600_000,
    # A killed member's partitions move to the others after this long without heartbeats.
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 2_000,
    # kafka-python's metrics cost a few percent of CPU per record and nothing reads them here.
    "metrics_enabled": False,
    # A member sees new partitions (the README's way to scale: raise them to a multiple of the
    # members) or a topic whose metadata was incomplete when it joined within seconds, not after
    # kafka-python's default 5 minutes: the changed metadata makes the group rebalance. Seen by
    # hand once: `ioc ingest` started right after `ioc services up` got 0 partitions and idled.
    "metadata_max_age_ms": 5_000,
}
LAG_CACHE_S = 3.0
# Each attempt to reach a broker gives up after this long, so every retry is logged.
BOOTSTRAP_TIMEOUT_MS = 5000


class BrokerUnavailable(Exception):  # noqa: N818 - reads better at the call site
    """No broker answered before stop was requested."""


class KafkaSource:
    """Subscribes `group` to `topics`; offsets move only through `commit` (auto-commit is off)."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Iterable[str],
        *,
        stop: threading.Event | None = None,
        client_id: str = "ioc-ingest",
        extra: Mapping[str, Any] | None = None,
        factory: Callable[..., Any] = KafkaConsumer,
    ) -> None:
        self._topics = tuple(topics)
        if not self._topics:
            raise ValueError("subscribe to at least one topic")
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap.split(","),
            "group_id": group,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            **CONSUMER_TUNING,
            **(extra or {}),
        }
        self._bootstrap = bootstrap
        self._consumer = _connect(factory, config, bootstrap, stop or threading.Event())
        # Learn the topics' partitions before joining the group. Joining with no metadata yet
        # gives an empty first assignment and relies on a second rebalance once it arrives; in
        # one CI run that second rebalance never came and the member idled for minutes.
        for topic in self._topics:
            try:
                self._consumer.partitions_for_topic(topic)
            except KafkaError as exc:
                log.warning("kafka: no metadata for %s yet (%s)", topic, exc)
        self._consumer.subscribe(list(self._topics), listener=_LogRebalance())
        self._lag: Mapping[TopicPartition, int] | None = None
        self._lag_at = float("-inf")

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        """Up to max_records records from the assigned partitions, in offset order per partition."""
        polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return flatten(polled)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Synchronous commit of next-offsets; a failure is logged (redelivery is harmless)."""
        if not offsets:
            return
        payload = {
            KafkaTP(tp.topic, tp.partition): OffsetAndMetadata(off, "", -1)
            for tp, off in offsets.items()
        }
        try:
            self._consumer.commit(offsets=payload)
        except KafkaError as exc:
            # Typically a rebalance: the rows are in the database, so the new owner's
            # redelivery is absorbed by the event keys.
            log.warning("kafka: offset commit failed (%s); records may be redelivered", exc)

    def rewind(self) -> None:
        """Seek every assigned partition back to the group's committed offset (or the start)."""
        for ktp in self._consumer.assignment():
            committed = self._consumer.committed(ktp)
            if committed is None:
                self._consumer.seek_to_beginning(ktp)
            else:
                self._consumer.seek(ktp, committed)

    def lag(self) -> Mapping[TopicPartition, int] | None:
        """End offset minus position of each assigned partition; cached for a few seconds."""
        now = time.monotonic()
        if now - self._lag_at < LAG_CACHE_S:
            return self._lag
        self._lag_at = now
        assigned = list(self._consumer.assignment())
        if not assigned:
            self._lag = None
            return None
        try:
            ends = self._consumer.end_offsets(assigned, timeout_ms=2000)
            lag: dict[TopicPartition, int] = {}
            for ktp in assigned:
                end = ends.get(ktp)
                if end is None:
                    continue
                # position() may block on an offset lookup for a fresh partition: keep it short.
                pos = self._consumer.position(ktp, timeout_ms=500)
                if pos is not None:
                    lag[TopicPartition(ktp.topic, ktp.partition)] = max(0, end - pos)
        except KafkaError as exc:
            log.debug("kafka: lag unavailable (%s)", exc)
            self._lag = None
            return None
        self._lag = lag
        return lag

    def close(self) -> None:
        """Leave the group without committing anything more."""
        try:
            self._consumer.close(autocommit=False)
        except KafkaError as exc:
            log.warning("kafka: close failed (%s)", exc)


class _LogRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """One line per assignment change: explains pauses after a member joins or dies."""

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("kafka: %d partitions revoked (rebalance)", len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("kafka: %d partitions assigned", len(assigned))


def _connect(
    factory: Callable[..., Any], config: dict[str, Any], bootstrap: str, stop: threading.Event
) -> Any:
    """The consumer, retrying with backoff while no broker answers (until `stop` is set)."""
    backoff = Backoff(initial_s=0.5, cap_s=5.0)
    while True:
        try:
            return factory(**config)
        except (KafkaTimeoutError, KafkaConnectionError):
            delay = backoff.next_delay()
            log.warning(
                "kafka: no broker reachable at %s; retry %d in %.1f s",
                bootstrap,
                backoff.attempts,
                delay,
            )
            if stop.wait(delay):
                raise BrokerUnavailable(f"no broker reachable at {bootstrap}") from None
