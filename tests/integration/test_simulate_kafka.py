"""Simulator -> topic on the real broker: all four feeds produced, read back valid and in order."""

from __future__ import annotations

import contextlib
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from kafka import KafkaAdminClient
from kafka.partitioner.default import murmur2

from ioc.app.commands.simulate import open_sink
from ioc.app.settings import Settings
from ioc.core.citypack import load_pack
from ioc.core.contracts import VN_TZ, Rejected, decode_event
from ioc.core.feeds import BY_TOPIC
from ioc.core.pacing import PacingClock
from simulators.engine import SimConfig, generate, run
from streams.transport.sinks import KafkaSink
from tests.support.ingest_run import read_topics

START = datetime(2025, 3, 4, 7, 0, tzinfo=VN_TZ)  # a Tuesday morning: every feed is busy


def test_all_four_feeds_round_trip_through_kafka(
    kafka_bootstrap: str, unique_topic: Callable[..., str]
) -> None:
    pack = load_pack("halong")
    names = {base: unique_topic(base) for base in BY_TOPIC}
    config = SimConfig(start=START, duration=timedelta(hours=4), seed=11)
    items = list(generate(config, pack))
    assert {i[2] for i in items} == set(BY_TOPIC)

    sink = KafkaSink(kafka_bootstrap, topic_name=names.__getitem__)
    summary = run(iter(items), sink, PacingClock(config.start_s, None))
    sink.close()
    assert summary.total == len(items) > 10_000

    records = read_topics(kafka_bootstrap, list(names.values()), len(items))
    assert len(records) == len(items)
    base_of = {full: base for base, full in names.items()}
    now = datetime.now(VN_TZ)

    # Every event valid; each entity in exactly one partition, in the order it was produced.
    produced: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for _, _, topic, key, value, _ in items:
        assert key is not None
        produced[(topic, key)].append(value)
    consumed: dict[tuple[str, bytes], list[tuple[int, int, bytes]]] = defaultdict(list)
    for r in records:
        base = base_of[r.topic]
        try:
            decode_event(r.value, wards=pack, now=now, expected_schema=base)
        except Rejected as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"invalid event on {base}: {exc}") from None
        consumed[(base, r.key)].append((r.partition, r.offset, r.value))
    assert consumed.keys() == produced.keys()
    for entity, rows in consumed.items():
        # One partition per entity: the one Kafka's default (murmur2) partitioner picks.
        assert {p for p, _, _ in rows} == {(murmur2(entity[1]) & 0x7FFFFFFF) % 3}, entity
        in_offset_order = [v for _, _, v in sorted(rows)]
        assert in_offset_order == produced[entity], entity
    partitions = {(r.topic, r.partition) for r in records}
    assert {p for t, p in partitions if t == names["ioc.payments.v1"]} == {0, 1, 2}


def test_simulate_creates_missing_topics_with_three_partitions(kafka_bootstrap: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)
    pack = load_pack("halong")
    sink = open_sink("kafka", settings)
    config = SimConfig(
        start=START, duration=timedelta(minutes=30), seed=5, feeds=("payments", "air_quality")
    )
    summary = run(generate(config, pack), sink, PacingClock(config.start_s, None))
    sink.close()
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ioc-tests")
    try:
        full = [prefix + base for base in BY_TOPIC]
        described = admin.describe_topics(full)
        assert sorted(d["name"] for d in described) == sorted(full)
        assert all(d["error_code"] == 0 for d in described)
        assert all(len(d["partitions"]) == 3 for d in described)
        records = read_topics(
            kafka_bootstrap, [prefix + "ioc.payments.v1", prefix + "ioc.air_quality.v1"],
            summary.total,
        )  # fmt: skip
        assert len(records) == summary.total > 100
    finally:
        with contextlib.suppress(Exception):
            admin.delete_topics([prefix + base for base in BY_TOPIC])
        admin.close()
