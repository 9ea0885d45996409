"""Pure parts of the ingest loop: backoff, rate window, dead-letter detail, status table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import TopicPartition as KafkaTP

from ioc.app.commands.ingest import format_status
from ioc.core.health import FeedHealth
from streams.ingest.dead_letters import MAX_DETAIL_CHARS, clean_detail
from streams.ingest.health import FeedDelta, RateWindow
from streams.transport.backoff import Backoff
from streams.transport.kafka_source import KafkaSource
from streams.transport.source import TopicPartition, flatten


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(initial_s=0.2, cap_s=5.0)
    delays = [b.next_delay() for _ in range(8)]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert b.attempts == 8
    b.reset()
    assert b.next_delay() == 0.2


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial_s=0.0)
    with pytest.raises(ValueError):
        Backoff(initial_s=2.0, cap_s=1.0)


def test_rate_window_counts_only_the_last_window() -> None:
    w = RateWindow(window_s=10.0, start=0.0)
    for t in range(0, 30):
        w.add(float(t), 100)  # 100 events every second
    # At t=29.5 the window (19.5, 29.5] holds the samples at 20..29: 1,000 events over 10 s.
    assert w.rate(29.5) == pytest.approx(100.0)
    assert w.rate(35.0) == pytest.approx(sum(100 for t in range(30) if t > 25) / 10)
    assert w.rate(100.0) == 0.0


def test_rate_window_early_on_divides_by_the_time_so_far() -> None:
    w = RateWindow(window_s=10.0, start=0.0)
    w.add(1.0, 50)
    assert w.rate(2.0) == pytest.approx(25.0)
    assert w.rate(2.0, extra=50) == pytest.approx(50.0)
    assert RateWindow(10.0, start=5.0).rate(5.0) == 0.0


def test_feed_delta_keeps_the_latest_time() -> None:
    d = FeedDelta()
    t = datetime(2025, 1, 1, tzinfo=UTC)
    for x in (t, t - timedelta(hours=1), None, t + timedelta(seconds=1), t):
        d.add_time(x)
    assert d.last_event_time == t + timedelta(seconds=1)


def test_clean_detail_is_one_bounded_line_without_nul() -> None:
    assert clean_detail("a\nb\x00c  d") == "a b\\x00c d"
    long = clean_detail("x" * 5000)
    assert len(long) == MAX_DETAIL_CHARS and long.endswith("...")


def test_status_table_shows_age_lag_rate_and_counts() -> None:
    read = datetime(2025, 5, 1, 10, 0, 0, tzinfo=UTC)
    rows = [
        FeedHealth(
            "payments", read - timedelta(seconds=42), read, 1234, 5, 7, 300, 812.26, read, read
        ),
        FeedHealth("dossiers", None, None, 0, 0, 0, None, None, read, read),
    ]
    lines = format_status(rows).splitlines()
    assert lines[0].split()[:3] == ["feed", "last", "event"]
    pay = lines[1].split()
    assert pay == ["payments", "2025-05-01T09:59:18+00:00", "42", "300", "812.3", "7", "1234"]
    assert lines[2].split() == ["dossiers", "-", "-", "-", "-", "0", "0"]
    assert format_status([]).splitlines()[1].startswith("(no feed")


def _consumer_record(topic: str, partition: int, offset: int, value: bytes) -> Any:
    return ConsumerRecord(
        topic, partition, 0, offset, 1_000, 0, b"k", value, [], None, 1, len(value), -1
    )


class _FakeConsumer:
    """Only what KafkaSource calls on kafka-python's KafkaConsumer during set-up and poll."""

    def __init__(self, polled: dict[Any, list[Any]], **_config: Any) -> None:
        self.polled = polled

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.topics = topics

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return self.polled


def test_kafka_source_hands_over_kafka_pythons_records_in_partition_order() -> None:
    p0 = [_consumer_record("t", 0, o, b"a%d" % o) for o in (5, 6)]
    p1 = [_consumer_record("t", 1, o, b"b%d" % o) for o in (0, 1, 2)]
    polled = {KafkaTP("t", 0): p0, KafkaTP("t", 1): p1}
    source = KafkaSource(
        "127.0.0.1:9", "g", ["t"], factory=lambda **cfg: _FakeConsumer(polled, **cfg)
    )
    got = source.poll(100, 0.1)
    assert [id(r) for r in got] == [id(r) for r in p0 + p1]  # the same objects, not copies
    assert [(r.partition, r.offset, r.value) for r in got[:3]] == [
        (0, 5, b"a5"),
        (0, 6, b"a6"),
        (1, 0, b"b0"),
    ]
    assert flatten({KafkaTP("t", 1): p1}) is p1
    assert flatten({}) == []


class _AssignedConsumer:
    """What KafkaSource calls on kafka-python's KafkaConsumer in assigned mode."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.assigned: list[Any] = []
        self.seeks: list[tuple[Any, int]] = []
        self.commits: list[dict[Any, Any]] = []

    def assign(self, tps: list[Any]) -> None:
        self.assigned = list(tps)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return {}

    def commit(self, offsets: dict[Any, Any]) -> None:
        self.commits.append(offsets)

    def close(self, autocommit: bool = True) -> None:
        pass


def test_kafka_source_assigned_reads_from_given_offsets_and_rewinds_to_its_commits() -> None:
    made: list[_AssignedConsumer] = []

    def factory(**config: Any) -> _AssignedConsumer:
        made.append(_AssignedConsumer(**config))
        return made[-1]

    start = {TopicPartition("t", 0): 5, TopicPartition("t", 1): 0}
    source = KafkaSource.assigned("a:1, b:2", "g", start, client_id="ioc-rebuild", factory=factory)
    consumer = made[-1]
    assert consumer.config["group_id"] == "g" and consumer.config["client_id"] == "ioc-rebuild"
    assert consumer.config["bootstrap_servers"] == ["a:1", "b:2"]
    assert consumer.assigned == [KafkaTP("t", 0), KafkaTP("t", 1)]
    assert consumer.seeks == [(KafkaTP("t", 0), 5), (KafkaTP("t", 1), 0)]
    assert source.poll(10, 0.0) == []
    source.commit({TopicPartition("t", 0): 9})
    assert [{tp: om.offset for tp, om in c.items()} for c in consumer.commits] == [
        {KafkaTP("t", 0): 9}
    ]
    consumer.seeks.clear()
    source.rewind()  # back to what was committed, not to the start
    assert consumer.seeks == [(KafkaTP("t", 0), 9), (KafkaTP("t", 1), 0)]
    source.close()
