"""Batches that cannot be fetched or decompressed: the pure parts (stall tracking, retries of
kafka-python's partitions, committed-offset lag) and the loop with a source that fails."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError, UnsupportedCodecError
from kafka.structs import TopicPartition as KafkaTP

from ioc.app.commands.ingest import _ThrottleKafkaErrors, format_status
from ioc.core.health import FeedHealth
from ioc.core.queries.alerts import feed_stalled
from layouts.components.status import health_strip, stale_feeds
from streams.ingest.stall import Stalls, failure_line
from streams.transport.kafka_lag import LAG_CACHE_S, CommittedLag
from streams.transport.kafka_retry import FETCH_RETRY_CAP_S, FetchRetries, reason_of
from streams.transport.kafka_source import KafkaSource
from streams.transport.source import FetchFailed, SourceRecord, TopicPartition
from tests.unit.test_ingest_loop import TOPIC, make, payment

NOW = datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
ZSTD = "UnsupportedCodecError: Libraries for zstd compression codec not found"


def failure(topic: str | None = "t.pay", partition: int = 1, offset: int = 40) -> FetchFailed:
    known = topic is not None
    return FetchFailed(
        ZSTD,
        topic=topic,
        partition=partition if known else None,
        offset=offset if known else None,
        attempt=1,
        retry_in_s=1.0,
    )


def rec(topic: str, partition: int, offset: int) -> SourceRecord:
    return SourceRecord(topic, partition, offset, None, b"{}", 0)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# -- stalls (the loop's view) ------------------------------------------------------------------
def test_a_stall_lasts_until_a_record_at_or_past_the_failed_offset_is_read() -> None:
    stalls = Stalls()
    stalls.failed(failure(), 1.0)
    again = stalls.failed(failure(), 2.0)
    assert again.failures == 2 and again.since == 1.0
    assert stalls.by_topic(["t.pay", "t.aq"]) == {
        "t.pay": f"cannot read t.pay[1] at offset 40: {ZSTD}"
    }
    # Another partition, or the stalled one before the failed offset, ends nothing.
    assert stalls.read([rec("t.pay", 0, 99), rec("t.pay", 1, 39)]) == []
    ended = stalls.read([rec("t.pay", 1, 40)])
    assert [s.partition for s in ended] == [1] and not stalls


def test_a_stall_ends_when_its_partition_moves_away_or_nothing_waits() -> None:
    stalls = Stalls()
    stalls.failed(failure(partition=0), 0.0)
    stalls.failed(failure(partition=1), 0.0)
    assert stalls.settle(None) == []  # lag not known: nothing can be concluded
    held = {TopicPartition("t.pay", 0): 12}  # partition 1 went to another member
    assert [s.partition for s in stalls.settle(held)] == [1]
    assert [s.partition for s in stalls.settle({TopicPartition("t.pay", 0): 0})] == [0]
    assert not stalls


def test_a_failure_that_names_no_partition_stalls_every_feed_until_records_come() -> None:
    stalls = Stalls()
    stalls.failed(failure(topic=None), 0.0)
    reasons = stalls.by_topic(["a", "b"])
    assert set(reasons) == {"a", "b"} and ZSTD in reasons["a"]
    assert stalls.settle({TopicPartition("a", 0): 0}) == []  # only records end it
    assert len(stalls.read([rec("a", 0, 0)])) == 1 and not stalls


def test_failure_line_is_one_line_with_where_why_and_the_next_attempt() -> None:
    line = failure_line(failure())
    assert "\n" not in line
    assert "topic=t.pay partition=1 offset=40" in line
    assert ZSTD in line and "retry 1 in 1.0 s" in line
    assert "topic=? partition=? offset=?" in failure_line(failure(topic=None))


def test_reason_names_the_error_type_once_on_one_bounded_line() -> None:
    assert reason_of(UnsupportedCodecError("Libraries for zstd compression codec not found")) == (
        ZSTD
    )
    assert reason_of(RuntimeError("bad\nframe")) == "RuntimeError: bad frame"
    assert reason_of(ValueError()) == "ValueError"
    assert len(reason_of(RuntimeError("x" * 1000))) == 300


# -- kafka-python side -------------------------------------------------------------------------
class FakeParts:
    """kafka-python's PartitionRecords whose record iterator died."""

    def __init__(self, tp: KafkaTP, offset: int) -> None:
        self.topic_partition = tp
        self.next_fetch_offset = offset
        self.live = True

    def __bool__(self) -> bool:
        return self.live

    def drain(self) -> None:
        self.live = False


class FakeFetcher:
    _next_partition_records: Any = None


class FakeConsumer:
    """What KafkaSource, FetchRetries and CommittedLag call on a KafkaConsumer."""

    def __init__(self, **config: Any) -> None:
        self.config = config
        self._fetcher = FakeFetcher()
        self.assigned = {KafkaTP("t", 0), KafkaTP("t", 1)}
        self.paused: set[KafkaTP] = set()
        self.fail: BaseException | None = None
        self.ends = {KafkaTP("t", 0): 50, KafkaTP("t", 1): 30}
        self.group_committed: dict[KafkaTP, int | None] = {KafkaTP("t", 0): 20}
        self.high: dict[KafkaTP, int] = {}
        self.calls: list[str] = []
        self.closed = False

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0, 1}

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        self.listener = listener

    def assignment(self) -> set[KafkaTP]:
        return set(self.assigned)

    def pause(self, *tps: KafkaTP) -> None:
        self.paused.update(tps)

    def resume(self, *tps: KafkaTP) -> None:
        self.paused.difference_update(tps)

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        if self.fail is not None:
            exc, self.fail = self.fail, None
            raise exc
        return {}

    def end_offsets(self, tps: list[KafkaTP], timeout_ms: int) -> dict[KafkaTP, int]:
        self.calls.append("end_offsets")
        if isinstance(self.fail, KafkaTimeoutError):
            raise self.fail
        return {tp: self.ends[tp] for tp in tps if tp in self.ends}

    def committed(self, tp: KafkaTP, timeout_ms: int) -> int | None:
        self.calls.append(f"committed {tp.partition}")
        return self.group_committed.get(tp)

    def beginning_offsets(self, tps: list[KafkaTP], timeout_ms: int) -> dict[KafkaTP, int]:
        return dict.fromkeys(tps, 5)

    def highwater(self, tp: KafkaTP) -> int | None:
        return self.high.get(tp)

    def commit(self, offsets: Mapping[KafkaTP, Any]) -> None:
        self.calls.append("commit")

    def close(self, autocommit: bool = True) -> None:
        self.closed = True


def test_a_failed_partition_is_drained_paused_and_resumed_after_its_backoff() -> None:
    clock, consumer = Clock(), FakeConsumer()
    retries = FetchRetries(clock)
    tp = KafkaTP("t", 1)
    attempts = []
    for _ in range(6):
        part = FakeParts(tp, 17)
        consumer._fetcher._next_partition_records = part
        exc = retries.failed(consumer, UnsupportedCodecError("no zstd"))
        assert not part.live and tp in consumer.paused  # the others can flow meanwhile
        assert (exc.topic, exc.partition, exc.offset) == ("t", 1, 17)
        attempts.append((exc.attempt, exc.retry_in_s))
        clock.t += exc.retry_in_s - 0.01
        retries.resume_due(consumer)
        assert tp in consumer.paused
        clock.t += 0.02
        retries.resume_due(consumer)
        assert tp not in consumer.paused
    assert attempts == [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 15.0), (6, 15.0)]
    assert FETCH_RETRY_CAP_S == 15.0
    retries.read({tp: []})  # read fine: the next failure starts from the first delay
    consumer._fetcher._next_partition_records = FakeParts(tp, 99)
    assert retries.failed(consumer, RuntimeError("x")).attempt == 1
    assert retries.reopen_in() is None


def test_a_failure_kafka_python_does_not_place_reopens_the_consumer_after_its_backoff() -> None:
    clock, consumer = Clock(), FakeConsumer()
    retries = FetchRetries(clock)
    exc = retries.failed(consumer, RuntimeError("decoder crashed"))
    assert exc.topic is None and exc.retry_in_s == 1.0 and not consumer.paused
    assert retries.reopen_in() == 1.0
    clock.t += 1.5
    assert retries.reopen_in() == 0.0
    retries.reopened()
    assert retries.reopen_in() is None


def test_kafka_source_turns_a_poll_error_into_fetch_failed_and_reopens_when_it_must() -> None:
    made: list[FakeConsumer] = []

    def factory(**config: Any) -> FakeConsumer:
        made.append(FakeConsumer(**config))
        return made[-1]

    source = KafkaSource("127.0.0.1:9", "g", ["t"], factory=factory)
    assert made[0].config["reconnect_backoff_max_ms"] <= 1000
    first = made[0]
    first._fetcher._next_partition_records = FakeParts(KafkaTP("t", 0), 3)
    first.fail = UnsupportedCodecError("Libraries for lz4 compression codec not found")
    with pytest.raises(FetchFailed) as info:
        source.poll(10, 0.0)
    assert info.value.where == "topic=t partition=0 offset=3" and KafkaTP("t", 0) in first.paused
    assert source.poll(10, 0.0) == [] and len(made) == 1  # same consumer, others keep flowing
    first.fail = RuntimeError("something else")
    with pytest.raises(FetchFailed) as info:
        source.poll(10, 0.0)
    assert info.value.topic is None
    source._retries._whole.due = 0.0  # the backoff has passed
    assert source.poll(10, 0.0) == []
    assert len(made) == 2 and first.closed


def test_lag_is_end_offset_minus_committed_never_the_position() -> None:
    clock, consumer = Clock(), FakeConsumer()
    lags = CommittedLag(clock)
    got = lags.lag(consumer)
    # Partition 1 has no committed offset: the group starts at the beginning (5).
    assert got == {TopicPartition("t", 0): 30, TopicPartition("t", 1): 25}
    lags.committed({KafkaTP("t", 0): 50})
    assert lags.lag(consumer) == {TopicPartition("t", 0): 0, TopicPartition("t", 1): 25}
    consumer.high[KafkaTP("t", 0)] = 60  # a fetch saw newer records before the next ask
    assert lags.lag(consumer) == {TopicPartition("t", 0): 10, TopicPartition("t", 1): 25}
    assert consumer.calls.count("end_offsets") == 1  # cached
    assert consumer.calls.count("committed 1") == 1  # asked once per assignment
    lags.forget([KafkaTP("t", 1)])  # a rebalance: asked again, at once
    lags.lag(consumer)
    assert consumer.calls.count("committed 1") == 2 and consumer.calls.count("end_offsets") == 2


def test_lag_is_unknown_rather_than_zero_when_the_broker_does_not_answer() -> None:
    clock, consumer = Clock(), FakeConsumer()
    lags = CommittedLag(clock)
    consumer.fail = KafkaTimeoutError("no answer")
    assert lags.lag(consumer) is None
    consumer.fail = None
    assert lags.lag(consumer) is None  # not asked again before the cache time
    clock.t += LAG_CACHE_S
    assert lags.lag(consumer) is not None
    del consumer.ends[KafkaTP("t", 1)]
    clock.t += LAG_CACHE_S
    assert lags.lag(consumer) is None  # one partition unknown: the sum would understate
    consumer.assigned = set()
    assert lags.lag(consumer) is None


# -- the loop ----------------------------------------------------------------------------------
def test_loop_logs_one_line_marks_the_feed_stalled_and_clears_it_once_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ing, source, db = make([payment(i) for i in range(6)], max_batch=10)
    real_poll = source.poll
    failures = [failure(TOPIC, 0, 0), failure(TOPIC, 0, 0)]

    def poll(n: int, t: float) -> Sequence[SourceRecord]:
        if failures:
            raise failures.pop(0)
        return real_poll(n, t)

    source.poll = poll  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="streams.ingest.loop"):
        assert ing.step() is None
        assert db.stalls["payments"] == f"cannot read {TOPIC}[0] at offset 0: {ZSTD}"
        assert db.health["payments"]["lag"] == 6  # written at once, with the records waiting
        assert ing.step() is None
        ing.step()
    lines = [r for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(lines) == 2 and all(r.exc_info is None for r in lines)
    assert len(db.events) == 6 and db.stalls["payments"] is None
    assert "readable again after 2 failed fetches" in caplog.text


# -- what people read --------------------------------------------------------------------------
def health(stall: str | None) -> FeedHealth:
    return FeedHealth(
        "payments", NOW - timedelta(seconds=5), NOW, 10, 0, 0, 120, 1.0, NOW, NOW, stall, NOW
    )


def test_status_and_wall_say_a_stalled_feed_is_stalled_and_why() -> None:
    why = f"cannot read ioc.payments.v1[0] at offset 9: {ZSTD}"
    lines = format_status([health(why)]).splitlines()
    assert lines[1].split()[3] == "120"  # the lag, not 0
    assert lines[2].strip() == f"STALLED since {NOW.isoformat(timespec='seconds')}: {why}"
    assert len(format_status([health(None)]).splitlines()) == 2
    assert feed_stalled(health(why), 60.0, 60.0)
    assert not feed_stalled(health(None), 60.0, 60.0)
    assert "payments" in stale_feeds([health(why)], {"payments": 60.0})
    assert "payments" not in stale_feeds([health(None)], {"payments": 60.0})
    strip = health_strip([health(why)], frozenset({"payments"}), "en")
    titles = [item.title for item in strip]
    assert f"payments: {why}" in titles


def test_kafka_pythons_repeated_errors_are_shown_once_per_window_with_a_count() -> None:
    clock = Clock()
    throttle = _ThrottleKafkaErrors(window_s=10.0, clock=clock)

    def record(name: str, msg: str, *args: Any) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)

    refused = "Connection failed: %s"
    assert throttle.filter(record("kafka.net", refused, "ECONNREFUSED"))
    assert not any(throttle.filter(record("kafka.net", refused, "ECONNREFUSED")) for _ in range(5))
    assert throttle.filter(record("kafka.net", "Metadata refresh: failed %s", "x"))  # other kind
    assert throttle.filter(record("streams.ingest.loop", refused, "ours"))  # never ours
    clock.t += 10.0
    shown = record("kafka.net", refused, "ECONNREFUSED")
    assert throttle.filter(shown)
    assert shown.getMessage() == "Connection failed: ECONNREFUSED (and 5 more like it not shown)"
