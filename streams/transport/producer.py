"""Topic step: producing to Kafka, riding out a broker that goes away for a while."""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ioc.core.errors import IocError
from streams.transport.patience import BrokerWait, Patience, reachable

# Takes kafka-python's keyword arguments; the real classes by default, fakes in unit tests.
Factory = Callable[..., Any]
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Idempotence keeps order with up to 5 requests in flight per connection; more would not.
MAX_IN_FLIGHT = 5
# Records handed to kafka-python and not yet acknowledged, at most: its accumulator has no
# memory bound, so without this a fast producer would queue a whole outage in memory.
MAX_PENDING = 100_000
# Short blocking calls inside kafka-python (metadata waits, bootstrap, flush slices), so that
# control comes back here to count the outage and say so.
BLOCK_MS = 5_000
FLUSH_SLICE_S = 0.2
# A restarted broker is found within about a second (kafka-python's default backs off to 30 s).
RECONNECT_BACKOFF_MAX_MS = 1_000
# Records still in kafka-python when patience runs out are never dropped before it does.
DELIVERY_MARGIN_MS = 120_000


class ProducerError(IocError):
    """Kafka could not be reached or did not take what was sent; the message is one line."""


def split_bootstrap(bootstrap: str) -> list[str]:
    """'host:port,host:port' as the list kafka-python takes, blanks dropped."""
    return [b.strip() for b in bootstrap.split(",") if b.strip()]


def is_outage(exc: BaseException) -> bool:
    """kafka-python's retriable errors (timeouts, lost connections, leaders moving) are what a
    broker that is down or restarting looks like; anything else is a real failure."""
    from kafka.errors import KafkaError

    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


def producer_config(
    bootstrap: list[str],
    client_id: str,
    *,
    linger_ms: int,
    batch_size: int,
    compression: str | None,
    patience_s: float,
) -> dict[str, Any]:
    """kafka-python settings: acks=all and idempotence, so that a batch retried after a lost
    connection is written once; retries (kafka-python's default: unlimited) last longer than
    the patience, so nothing handed over is dropped while the producer still waits."""
    return {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": linger_ms,
        "batch_size": batch_size,
        "compression_type": compression,
        "max_in_flight_requests_per_connection": MAX_IN_FLIGHT,
        "max_request_size": MAX_REQUEST_BYTES,
        "delivery_timeout_ms": int(patience_s * 1000) + DELIVERY_MARGIN_MS,
        "max_block_ms": BLOCK_MS,
        "bootstrap_timeout_ms": BLOCK_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


class Producer:
    """A kafka-python producer with the project's delivery settings (acks=all, idempotent) that
    waits out broker outages with bounded patience (see streams.transport.patience).

    Delivery failures arrive later, on the producer's own thread; they are kept and raised,
    as one `error` with a one-line message, from the next send or flush.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        linger_ms: int = 20,
        batch_size: int = 512 * 1024,
        compression: str | None = None,
        error: type[Exception] = ProducerError,
        noun: str = "message",
        patience: Patience | None = None,
        max_pending: int = MAX_PENDING,
        producer_factory: Factory | None = None,
        admin_factory: Factory | None = None,
        probe: Callable[[Sequence[str]], bool] = reachable,
    ) -> None:
        if producer_factory is None:
            from kafka import KafkaProducer

            producer_factory = KafkaProducer
        self.bootstrap = split_bootstrap(bootstrap)
        self.client_id = client_id
        self.errors: list[BaseException] = []
        self._error = error
        self._noun = noun
        self._admin_factory = admin_factory
        self._probe = probe
        self._max_pending = max_pending
        self._sent = 0
        # Acknowledgements, counted on kafka-python's thread by next(counter, metadata): one C
        # call per record, atomic under the GIL, so no lock and no Python frame on its hot path
        # (send() costs ~0.1 us more than without counting, against ~30 us in kafka-python).
        self._acks = itertools.count()
        self._on_ack = functools.partial(next, self._acks)
        self._acked_seen = 0
        patience = patience or Patience()
        where = ",".join(self.bootstrap)
        self.wait = BrokerWait(patience, where, error, pending=self.pending, noun=noun)
        config = producer_config(
            self.bootstrap,
            client_id,
            linger_ms=linger_ms,
            batch_size=batch_size,
            compression=compression,
            patience_s=patience.seconds,
        )
        self._producer: Any = self._connect(producer_factory, config)

    def _connect(self, factory: Factory, config: dict[str, Any]) -> Any:
        from kafka.errors import KafkaError

        try:
            return self.wait.retry(lambda: factory(**config), is_outage, self._reachable)
        except KafkaError as exc:
            raise self._error(f"cannot reach Kafka at {self.wait.where}: {exc}") from None
        except (ValueError, RuntimeError, AssertionError) as exc:
            # kafka-python reports a missing compression library or a bad setting this way.
            raise self._error(f"cannot configure the Kafka producer: {exc}") from None

    def _reachable(self) -> bool:
        return self._probe(self.bootstrap)

    def _acked(self) -> int:
        # itertools.count shows its next value only in its repr: "count(1234)".
        return int(repr(self._acks)[6:-1])

    def pending(self) -> int:
        """Records handed to kafka-python and not yet acknowledged (or failed)."""
        return self._sent - self._acked() - len(self.errors)

    def _settled(self) -> int:
        return self._acked() + len(self.errors)

    def ensure_topics(self, names: Sequence[str], partitions: int, replication: int) -> None:
        """Create those of these full-named topics that are missing."""
        from kafka.errors import KafkaError

        try:
            self.wait.retry(
                lambda: self._create_missing(names, partitions, replication),
                is_outage,
                self._reachable,
            )
        except KafkaError as exc:
            raise self._error(f"cannot create topics {', '.join(names)}: {exc}") from None

    def _create_missing(self, names: Sequence[str], partitions: int, replication: int) -> None:
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        make_admin = self._admin_factory or KafkaAdminClient
        try:
            admin = make_admin(bootstrap_servers=self.bootstrap, client_id=self.client_id,
                               bootstrap_timeout_ms=BLOCK_MS,
                               reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS)  # fmt: skip
        except KafkaError as exc:
            if is_outage(exc):
                raise
            raise self._error(f"cannot reach Kafka at {self.wait.where}: {exc}") from None
        try:
            existing = set(admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                new = [NewTopic(n, partitions, replication) for n in missing]
                # Created meanwhile by another producer (or by our own try before an outage).
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(new, wait_for_metadata=True)
        finally:
            admin.close()

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has, from the producer's metadata (fetched if unknown)."""
        from kafka.errors import KafkaError

        try:
            parts = self.wait.retry(lambda: self._producer.partitions_for(topic), is_outage)
        except KafkaError as exc:
            raise self._error(f"cannot read the partitions of {topic}: {exc}") from None
        if not parts:
            raise self._error(f"topic {topic} has no partitions")
        return len(parts)

    def send(self, topic: str, value: bytes, key: bytes | None, partition: int | None) -> None:
        """Queue one message; waits while too many are unacknowledged (and patiently while the
        broker is away); raises if any message sent so far has failed."""
        if self._sent - self._acked_seen >= self._max_pending:
            # Acknowledgements only grow: the count is read again only when the last one read
            # leaves too many pending.
            self._acked_seen = self._acked()
            if self._sent - self._acked_seen >= self._max_pending:
                self._drain()
        try:
            future = self._producer.send(topic, value=value, key=key, partition=partition)
        except Exception as exc:
            future = self._send_again(exc, topic, value, key, partition)
        self._sent += 1
        future.add_callback(self._on_ack)
        future.add_errback(self.errors.append)
        if not self._sent & 1023:
            self.wait.watch(self._settled(), self.pending() <= 0)
        if self.errors:
            self._raise()

    def _send_again(
        self, exc: Exception, topic: str, value: bytes, key: bytes | None, partition: int | None
    ) -> Any:
        """After send() raised: kafka-python raises only before it queues the record (a metadata
        wait that timed out, mostly), so sending it again neither doubles nor reorders it."""
        from kafka.errors import KafkaError

        def send() -> Any:
            return self._producer.send(topic, value=value, key=key, partition=partition)

        try:
            if not is_outage(exc):
                raise exc
            return self.wait.retry(send, is_outage)
        except KafkaError as err:
            raise self._error(f"Kafka did not take a {self._noun}: {err}") from None

    def _drain(self) -> None:
        """Wait until half of the pending records are acknowledged (or one has failed)."""
        low = self._max_pending // 2
        self.wait.until(lambda: self.pending() <= low or bool(self.errors), self._settled)
        if self.errors:
            self._raise()

    def _raise(self) -> None:
        first = self.errors[0]
        raise self._error(f"Kafka did not take {len(self.errors)} {self._noun}(s): {first}")

    def flush(self) -> None:
        """Wait until every queued message is acknowledged (patiently while the broker is
        away); raises if any failed."""
        self.wait.until(self._flushed, self._settled, pause_s=0.005)
        if self.errors:
            self._raise()

    def _flushed(self) -> bool:
        from kafka.errors import KafkaTimeoutError

        try:
            self._producer.flush(timeout=FLUSH_SLICE_S)
        except KafkaTimeoutError:
            return False
        # A batch's records are settled just after the batch: wait for their callbacks too.
        return self.pending() <= 0

    def close(self) -> None:
        """Flush and close; after giving up on the broker, close without waiting again."""
        try:
            if not self.wait.gave_up:
                self.flush()
        finally:
            if self.wait.gave_up:
                self._abandon()
            else:
                self._producer.close()

    def _abandon(self) -> None:
        """Close without waiting for records the broker will not take. kafka-python's close(0)
        flushes first and raises when something is unacknowledged, before it stops its sender
        thread, which would then retry in the background until the delivery timeout."""
        from kafka.errors import KafkaError

        try:
            self._producer.close(timeout=0)
        except KafkaError:
            sender = getattr(self._producer, "_sender", None)
            if sender is not None:
                sender.force_close()
