"""Consumer step: plain Kafka consumers that are assigned partitions, outside group membership."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from streams.transport.producer import split_bootstrap


def open_consumer(
    bootstrap: str,
    *,
    group: str | None,
    client_id: str,
    error: type[Exception],
    factory: Callable[..., Any] | None = None,
    **config: Any,
) -> Any:
    """A kafka-python consumer that commits only when told; `error` (one line) if Kafka cannot
    be reached. `group` only stores offsets: partitions are assigned, never subscribed."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    try:
        return (factory or KafkaConsumer)(
            bootstrap_servers=split_bootstrap(bootstrap),
            group_id=group,
            enable_auto_commit=False,
            client_id=client_id,
            **config,
        )
    except KafkaError as exc:
        raise error(f"cannot reach Kafka at {bootstrap}: {exc}") from None


def partitions_of(
    consumer: Any, names: Iterable[str], bootstrap: str, error: type[Exception]
) -> list[Any]:
    """kafka-python's TopicPartitions of these full-named topics, in order; `error` (one line)
    if one does not exist."""
    from kafka.structs import TopicPartition as KafkaTP

    out: list[Any] = []
    for name in names:
        parts = consumer.partitions_for_topic(name)
        if not parts:
            raise error(f"topic {name} does not exist on {bootstrap}")
        out.extend(KafkaTP(name, p) for p in sorted(parts))
    return out
