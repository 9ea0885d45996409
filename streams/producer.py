"""Topic step: producing to Kafka."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

# Takes kafka-python's keyword arguments; the real classes by default, fakes in unit tests.
Factory = Callable[..., Any]
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Idempotence keeps order with up to 5 requests in flight per connection; more would not.
MAX_IN_FLIGHT = 5


class ProducerError(Exception):
    """Kafka could not be reached or did not take what was sent; the message is one line."""


def split_bootstrap(bootstrap: str) -> list[str]:
    """'host:port,host:port' as the list kafka-python takes, blanks dropped."""
    return [b.strip() for b in bootstrap.split(",") if b.strip()]


class Producer:
    """A kafka-python producer with the project's delivery settings (acks=all, idempotent).

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
        producer_factory: Factory | None = None,
        admin_factory: Factory | None = None,
    ) -> None:
        from kafka.errors import KafkaError

        if producer_factory is None:
            from kafka import KafkaProducer

            producer_factory = KafkaProducer
        self.bootstrap = split_bootstrap(bootstrap)
        self.client_id = client_id
        self.errors: list[BaseException] = []
        self._error = error
        self._noun = noun
        self._admin_factory = admin_factory
        try:
            self._producer: Any = producer_factory(
                bootstrap_servers=self.bootstrap,
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                linger_ms=linger_ms,
                batch_size=batch_size,
                compression_type=compression,
                max_in_flight_requests_per_connection=MAX_IN_FLIGHT,
                max_request_size=MAX_REQUEST_BYTES,
            )
        except KafkaError as exc:
            raise error(f"cannot reach Kafka at {bootstrap}: {exc}") from None
        except (ValueError, RuntimeError, AssertionError) as exc:
            # kafka-python reports a missing compression library or a bad setting this way.
            raise error(f"cannot configure the Kafka producer: {exc}") from None

    def ensure_topics(self, names: Sequence[str], partitions: int, replication: int) -> None:
        """Create those of these full-named topics that are missing."""
        from kafka.admin import KafkaAdminClient, NewTopic
        from kafka.errors import KafkaError, TopicAlreadyExistsError

        make_admin = self._admin_factory or KafkaAdminClient
        try:
            admin = make_admin(bootstrap_servers=self.bootstrap, client_id=self.client_id)
        except KafkaError as exc:
            where = ",".join(self.bootstrap)
            raise self._error(f"cannot reach Kafka at {where}: {exc}") from None
        try:
            existing = set(admin.list_topics())
            missing = [n for n in names if n not in existing]
            if missing:
                new = [NewTopic(n, partitions, replication) for n in missing]
                # Created meanwhile by another producer: fine.
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(new, wait_for_metadata=True)
        except KafkaError as exc:
            raise self._error(f"cannot create topics {', '.join(names)}: {exc}") from None
        finally:
            admin.close()

    def partition_count(self, topic: str) -> int:
        """How many partitions the topic has, from the producer's metadata (fetched if unknown)."""
        parts = self._producer.partitions_for(topic)
        if not parts:
            raise self._error(f"topic {topic} has no partitions")
        return len(parts)

    def send(self, topic: str, value: bytes, key: bytes | None, partition: int | None) -> None:
        """Queue one message; raises if any message sent so far has failed."""
        future = self._producer.send(topic, value=value, key=key, partition=partition)
        future.add_errback(self.errors.append)
        if self.errors:
            self._raise()

    def _raise(self) -> None:
        first = self.errors[0]
        raise self._error(f"Kafka did not take {len(self.errors)} {self._noun}(s): {first}")

    def flush(self) -> None:
        """Wait until every queued message is acknowledged; raises if any failed."""
        self._producer.flush()
        if self.errors:
            self._raise()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()
