"""Consumer step on the real broker: a running member picks up partitions added to its topic."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewPartitions

from streams.transport.kafka_source import KafkaSource
from streams.transport.source import TopicPartition

# Well inside kafka-python's default metadata age (5 minutes), well above ours (5 s).
PICK_UP_S = 40.0


def test_member_consumes_a_partition_added_while_it_runs(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("ioc.kafkasource.v1", partitions=1)
    source = KafkaSource(
        kafka_bootstrap, f"g-{topic}", [topic], stop=threading.Event(), client_id="ioc-tests"
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ioc-tests")
    try:
        producer.send(topic, value=b"first", partition=0).get(timeout=30)
        seen: dict[TopicPartition, list[bytes]] = {}
        deadline = time.monotonic() + PICK_UP_S
        while not seen and time.monotonic() < deadline:
            for r in source.poll(100, 0.5):
                seen.setdefault(TopicPartition(r.topic, r.partition), []).append(r.value)
        assert seen == {TopicPartition(topic, 0): [b"first"]}

        admin.create_partitions({topic: NewPartitions(total_count=2)})
        # A new producer, whose first metadata already has partition 1.
        with contextlib.closing(KafkaProducer(bootstrap_servers=kafka_bootstrap)) as late:
            late.send(topic, value=b"second", partition=1).get(timeout=30)
        added = TopicPartition(topic, 1)
        started = time.monotonic()
        while added not in seen and time.monotonic() - started < PICK_UP_S:
            for r in source.poll(100, 0.5):
                seen.setdefault(TopicPartition(r.topic, r.partition), []).append(r.value)
        waited = time.monotonic() - started
        assert seen.get(added) == [b"second"], f"partition 1 not consumed after {waited:.0f} s"
        assert seen[TopicPartition(topic, 0)] == [b"first"]  # nothing read twice
    finally:
        producer.close()
        admin.close()
        source.close()
