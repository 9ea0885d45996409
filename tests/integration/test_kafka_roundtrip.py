"""Topic step on the real broker: 1,000 keyed messages produced with acks=all and read back."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

MESSAGES = 1_000
KEYS = 37  # prime, so keys do not line up with the 3 partitions by accident
PARTITIONS = 3


def _payload(i: int) -> dict[str, object]:
    key = f"entity-{i % KEYS:02d}"
    return {"key": key, "seq": i // KEYS, "i": i, "text": f"message {i} of {key}"}


def test_thousand_messages_round_trip_in_key_order(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    topic = unique_topic("ioc.roundtrip.v1", partitions=PARTITIONS)
    sent = [_payload(i) for i in range(MESSAGES)]

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    futures = [
        producer.send(
            topic,
            key=str(msg["key"]).encode(),
            value=json.dumps(msg, sort_keys=True).encode(),
        )
        for msg in sent
    ]
    producer.flush(timeout=60)
    metadata = [f.get(timeout=30) for f in futures]
    producer.close()
    produced_at = {(m.partition, m.offset): i for i, m in enumerate(metadata)}
    assert len(produced_at) == MESSAGES  # no two messages acknowledged at the same offset
    partitions_used = {m.partition for m in metadata}
    assert partitions_used == set(range(PARTITIONS)), "keys should spread over all partitions"

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    received: list[Any] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < MESSAGES and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                received.extend(records)
        # Nothing beyond what was sent may arrive: poll once more after the last message.
        for records in consumer.poll(timeout_ms=1000).values():
            received.extend(records)
    finally:
        consumer.close()

    assert len(received) == MESSAGES
    seen_key_partition: dict[str, int] = {}
    next_seq: dict[str, int] = defaultdict(int)
    seen: set[int] = set()
    for record in received:
        i = produced_at[(record.partition, record.offset)]
        assert i not in seen
        seen.add(i)
        body = json.loads(record.value)
        assert body == sent[i]
        assert record.key == str(sent[i]["key"]).encode()
        key = str(body["key"])
        # One key, one partition, and within it the order of sending.
        assert seen_key_partition.setdefault(key, record.partition) == record.partition
        assert body["seq"] == next_seq[key]
        next_seq[key] += 1
    assert seen == set(range(MESSAGES))
    expected_per_key = {f"entity-{k:02d}": len(range(k, MESSAGES, KEYS)) for k in range(KEYS)}
    assert dict(next_seq) == expected_per_key


def test_unique_topic_has_requested_partitions(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    one = unique_topic("ioc.fixture.v1", partitions=1)
    five = unique_topic("ioc.fixture.v1", partitions=5)
    assert one != five
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([one, five])}
    finally:
        admin.close()
    assert described == {one: 1, five: 5}
