"""Consumer step: the one RecordSource over Kafka (kafka-python), committing only on request."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata
from kafka.structs import TopicPartition as KafkaTP

from streams.transport.backoff import Backoff
from streams.transport.kafka_lag import CommittedLag
from streams.transport.kafka_retry import FetchRetries
from streams.transport.producer import split_bootstrap
from streams.transport.source import Record, TopicPartition, flatten

log = logging.getLogger("streams.transport.kafka_source")

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
    # After a broker restart the member must be back within seconds. kafka-python doubles its
    # reconnect delay after every refused attempt up to 30 s, so its next attempt came up to
    # ~25 s after the broker was back: rows 23 s after a 25 s outage (53 s seen once), 0.8-1.2 s
    # with this cap (tests/integration/test_kafka_reconnect.py). Coordinator lookup, metadata
    # and fetches all wait on that connection; an attempt a second costs nothing on a closed
    # port (kafka-python's log lines about it are throttled by ioc.app.commands.ingest).
    "reconnect_backoff_max_ms": 1_000,
}
# Each attempt to reach a broker gives up after this long, so every retry is logged.
BOOTSTRAP_TIMEOUT_MS = 5000


class BrokerUnavailable(Exception):  # noqa: N818 - reads better at the call site
    """No broker answered before stop was requested."""


class KafkaSource:
    """Reads for `group`; offsets move only through `commit` (auto-commit is off).

    Subscribed to `topics` (group membership: partitions are shared out and move at rebalances),
    or, made by `assigned`, over fixed partitions from given offsets (the group only stores how
    far it got; no rebalance can stall or split the reading). Either way a batch that cannot be
    fetched is paused and retried, and a broker that is away is waited for.
    """

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
        start: Mapping[TopicPartition, int] | None = None,
    ) -> None:
        self._topics = tuple(topics)
        if not self._topics:
            raise ValueError("subscribe to at least one topic")
        # Assigned mode: each partition's committed offset, where a new consumer starts.
        self._assigned = None if start is None else dict(start)
        config: dict[str, Any] = {
            "bootstrap_servers": split_bootstrap(bootstrap),
            "group_id": group,
            "client_id": client_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            **CONSUMER_TUNING,
            **(extra or {}),
        }
        self._bootstrap = bootstrap
        self._config = config
        self._factory = factory
        self._stop = stop or threading.Event()
        self._lags = CommittedLag()
        self._retries = FetchRetries()
        self._consumer = self._open()

    @classmethod
    def assigned(
        cls,
        bootstrap: str,
        group: str,
        start: Mapping[TopicPartition, int],
        *,
        stop: threading.Event | None = None,
        client_id: str = "ioc-ingest",
        factory: Callable[..., Any] = KafkaConsumer,
    ) -> KafkaSource:
        """A source over exactly the partitions of `start`, each read from its offset there."""
        topics = dict.fromkeys(tp.topic for tp in start)
        return cls(
            bootstrap, group, topics, stop=stop, client_id=client_id, factory=factory, start=start
        )

    def _open(self) -> Any:
        """A new consumer, subscribed or assigned (retrying while no broker answers)."""
        consumer = _connect(self._factory, self._config, self._bootstrap, self._stop)
        if self._assigned is not None:
            consumer.assign([KafkaTP(*tp) for tp in self._assigned])
            for tp, offset in self._assigned.items():
                consumer.seek(KafkaTP(*tp), offset)
            return consumer
        # Learn the topics' partitions before joining the group. Joining with no metadata yet
        # gives an empty first assignment and relies on a second rebalance once it arrives; in
        # one CI run that second rebalance never came and the member idled for minutes.
        for topic in self._topics:
            try:
                consumer.partitions_for_topic(topic)
            except KafkaError as exc:
                log.warning("kafka: no metadata for %s yet (%s)", topic, exc)
        consumer.subscribe(list(self._topics), listener=_LogRebalance(self._forget))
        return consumer

    def _forget(self, partitions: Iterable[KafkaTP]) -> None:
        """A rebalance moved `partitions`: another member may have committed meanwhile. Their
        retries stay: kafka-python keeps a partition paused when it is assigned again."""
        self._lags.forget(list(partitions))

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        """Up to max_records records from the assigned partitions, in offset order per partition.

        Raises FetchFailed when a batch cannot be fetched or decompressed: its partition is
        paused and retried with backoff while the other partitions keep flowing."""
        wait = self._retries.reopen_in()
        if wait is not None:
            if wait > 0:
                self._stop.wait(min(wait, timeout_s))
                return []
            try:
                self._reopen()
            except BrokerUnavailable:  # stop was requested while reconnecting
                return []
        self._retries.resume_due(self._consumer)
        try:
            polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except Exception as exc:
            # Whatever the cause (a codec missing here, a corrupt batch, a batch too large), no
            # event is at fault and the records must not be skipped: report, pause, retry.
            raise self._retries.failed(self._consumer, exc) from exc
        if polled:
            self._retries.read(polled)
        return flatten(polled)

    def _reopen(self) -> None:
        """Replace a consumer whose failure named no partition: its state cannot be trusted."""
        with contextlib.suppress(Exception):  # the old one may be broken; the new one matters
            self._consumer.close(autocommit=False)
        self._lags.forget()
        self._retries.reopened()
        self._consumer = self._open()

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
            return
        self._lags.committed({ktp: om.offset for ktp, om in payload.items()})
        if self._assigned is not None:
            self._assigned.update(offsets)

    def rewind(self) -> None:
        """Seek every assigned partition back to the group's committed offset (or the start)."""
        if self._assigned is not None:
            for tp, offset in self._assigned.items():
                self._consumer.seek(KafkaTP(*tp), offset)
            return
        for ktp in self._consumer.assignment():
            committed = self._consumer.committed(ktp)
            if committed is None:
                self._consumer.seek_to_beginning(ktp)
            else:
                self._consumer.seek(ktp, committed)

    def lag(self) -> Mapping[TopicPartition, int] | None:
        """End offset minus committed offset of each assigned partition (None: not known)."""
        try:
            return self._lags.lag(self._consumer)
        except Exception as exc:  # a lag figure is never worth stopping the ingest for
            log.debug("kafka: lag unknown (%s)", exc)
            return None

    def close(self) -> None:
        """Leave the group without committing anything more."""
        try:
            self._consumer.close(autocommit=False)
        except Exception as exc:  # closing a consumer whose fetch failed must not raise either
            log.warning("kafka: close failed (%s)", exc)


class _LogRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """One line per assignment change: explains pauses after a member joins or dies."""

    def __init__(self, moved: Callable[[Iterable[KafkaTP]], None]) -> None:
        self._moved = moved

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("kafka: %d partitions revoked (rebalance)", len(revoked))
        self._moved(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("kafka: %d partitions assigned", len(assigned))
        self._moved(assigned)


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
