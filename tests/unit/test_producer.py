"""Shared Kafka producer (streams.transport.producer) and the Kafka sink, against fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import kafka
import kafka.admin
import pytest
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from ioc.core.sinks import SinkError
from streams.replay.player import ReplayError
from streams.transport.patience import Patience
from streams.transport.producer import Producer, ProducerError, split_bootstrap
from streams.transport.sinks import KafkaSink


class FakeFuture:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[object], object]] = []
        self.errbacks: list[Callable[[BaseException], object]] = []
        self.settled = False

    def add_callback(self, fn: Callable[[object], object]) -> FakeFuture:
        self.callbacks.append(fn)
        return self

    def add_errback(self, fn: Callable[[BaseException], object]) -> FakeFuture:
        self.errbacks.append(fn)
        return self

    def succeed(self) -> None:
        self.settled = True
        for fn in self.callbacks:
            fn(None)

    def fail(self, exc: BaseException) -> None:
        self.settled = True
        for fn in self.errbacks:
            fn(exc)


class FakeProducer:
    made: ClassVar[list[FakeProducer]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes | None, int | None]] = []
        self.futures: list[FakeFuture] = []
        self.flushes = 0
        self.closed = False
        self.partitions: dict[str, set[int]] = {}
        FakeProducer.made.append(self)

    def send(
        self, topic: str, *, value: bytes, key: bytes | None, partition: int | None
    ) -> FakeFuture:
        self.sent.append((topic, value, key, partition))
        future = FakeFuture()
        self.futures.append(future)
        return future

    def partitions_for(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)

    def flush(self, timeout: float | None = None) -> None:
        """A broker that is up: everything not yet settled is acknowledged."""
        self.flushes += 1
        for future in self.futures:
            if not future.settled:
                future.succeed()

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class FakeAdmin:
    made: ClassVar[list[FakeAdmin]] = []
    existing: ClassVar[set[str]] = set()
    create_error: ClassVar[BaseException | None] = None

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.created: list[tuple[str, int, int]] = []
        self.closed = False
        FakeAdmin.made.append(self)

    def list_topics(self) -> list[str]:
        return sorted(FakeAdmin.existing)

    def create_topics(self, new: list[Any], wait_for_metadata: bool) -> None:
        assert wait_for_metadata
        self.created += [(t.name, t.num_partitions, t.replication_factor) for t in new]
        if FakeAdmin.create_error is not None:
            raise FakeAdmin.create_error

    def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProducer.made = []
    FakeAdmin.made = []
    FakeAdmin.existing = set()
    FakeAdmin.create_error = None
    monkeypatch.setattr(kafka, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(kafka.admin, "KafkaAdminClient", FakeAdmin)


# No patience: an unreachable broker fails at once (the waiting is tested in test_patience).
IMPATIENT = Patience(seconds=0, say=lambda line: None, sleep=lambda s: None)


def make(**kw: Any) -> tuple[Producer, FakeProducer]:
    kw.setdefault("patience", IMPATIENT)
    producer = Producer(" a:9092, ,b:9093 ", client_id="ioc-test", **kw)
    return producer, FakeProducer.made[-1]


def raising(exc: BaseException) -> Callable[..., Any]:
    def factory(**config: Any) -> Any:
        raise exc

    return factory


def test_split_bootstrap() -> None:
    assert split_bootstrap(" a:1 ,, b:2,") == ["a:1", "b:2"]
    assert split_bootstrap("") == []


def test_producer_settings() -> None:
    _, fake = make(linger_ms=7, batch_size=1234, compression="gzip")
    assert fake.config == {
        "bootstrap_servers": ["a:9092", "b:9093"],
        "client_id": "ioc-test",
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 7,
        "batch_size": 1234,
        "compression_type": "gzip",
        "max_in_flight_requests_per_connection": 5,
        "max_request_size": 4 * 1024 * 1024,
        "delivery_timeout_ms": 120_000,  # patience 0 + the margin
        "max_block_ms": 5000,
        "bootstrap_timeout_ms": 5000,
        "reconnect_backoff_max_ms": 1000,
    }
    _, fake = make(patience=Patience(seconds=300))
    # Records handed over are retried for longer than the producer is patient.
    assert fake.config["delivery_timeout_ms"] == 420_000


def test_unreachable_and_misconfigured_raise_the_given_error() -> None:
    with pytest.raises(SinkError, match=r"^cannot reach Kafka at x:1 for 0 s .*KafkaTimeoutError"):
        Producer(
            "x:1",
            client_id="c",
            error=SinkError,
            producer_factory=raising(KafkaTimeoutError()),
            patience=IMPATIENT,
        )
    with pytest.raises(ReplayError, match=r"^cannot configure the Kafka producer: no lz4$"):
        Producer(
            "x:1", client_id="c", error=ReplayError, producer_factory=raising(ValueError("no lz4"))
        )
    with pytest.raises(SinkError, match=r"^cannot reach Kafka at x:1: KafkaError: bad$"):
        Producer("x:1", client_id="c", error=SinkError, producer_factory=raising(KafkaError("bad")))


def test_ensure_topics_creates_only_missing() -> None:
    producer, _ = make()
    FakeAdmin.existing = {"t.a"}
    producer.ensure_topics(["t.a", "t.b", "t.c"], 6, 2)
    (admin,) = FakeAdmin.made
    assert admin.config == {
        "bootstrap_servers": ["a:9092", "b:9093"],
        "client_id": "ioc-test",
        "bootstrap_timeout_ms": 5000,
        "reconnect_backoff_max_ms": 1000,
    }
    assert admin.created == [("t.b", 6, 2), ("t.c", 6, 2)]
    assert admin.closed
    FakeAdmin.existing = {"t.a", "t.b", "t.c"}
    producer.ensure_topics(["t.a", "t.c"], 6, 2)
    assert FakeAdmin.made[-1].created == []


def test_ensure_topics_tolerates_a_race_and_reports_failures() -> None:
    producer, _ = make(error=ReplayError)
    FakeAdmin.create_error = TopicAlreadyExistsError()
    producer.ensure_topics(["t.a"], 3, 1)  # created meanwhile elsewhere
    FakeAdmin.create_error = KafkaError("boom")
    with pytest.raises(ReplayError, match=r"^cannot create topics t\.a, t\.b: KafkaError: boom$"):
        producer.ensure_topics(["t.a", "t.b"], 3, 1)
    assert FakeAdmin.made[-1].closed
    producer, _ = make(error=ReplayError, admin_factory=raising(KafkaTimeoutError()))
    with pytest.raises(ReplayError, match=r"^cannot reach Kafka at a:9092,b:9093 for 0 s"):
        producer.ensure_topics(["t.a"], 3, 1)


def test_delivery_failures_surface_on_next_send_and_flush() -> None:
    producer, fake = make(noun="thing")
    producer.send("t", b"v1", b"k", 2)
    producer.send("t", b"v2", None, None)
    assert fake.sent == [("t", b"v1", b"k", 2), ("t", b"v2", None, None)]
    fake.futures[0].fail(KafkaError("late"))
    with pytest.raises(ProducerError, match=r"^Kafka did not take 1 thing\(s\): KafkaError: late$"):
        producer.send("t", b"v3", None, None)
    assert len(fake.sent) == 3  # queued before the earlier failure is raised
    fake.futures[1].fail(KafkaError("later"))
    with pytest.raises(ProducerError, match=r"^Kafka did not take 2 thing\(s\): KafkaError: late$"):
        producer.flush()
    assert fake.flushes == 1


def test_close_flushes_then_closes_even_on_failure() -> None:
    producer, fake = make()
    producer.close()
    assert (fake.flushes, fake.closed) == (1, True)
    producer, fake = make()
    producer.send("t", b"v", None, None)
    fake.futures[0].fail(KafkaError("x"))
    with pytest.raises(ProducerError, match=r"did not take 1 message\(s\)"):
        producer.close()
    assert (fake.flushes, fake.closed) == (1, True)


def test_partition_count() -> None:
    producer, fake = make(error=SinkError)
    fake.partitions["t"] = {0, 1, 2, 3}
    assert producer.partition_count("t") == 4
    with pytest.raises(SinkError, match=r"^topic u has no partitions$"):
        producer.partition_count("u")


def murmur2_partition(key: bytes, count: int) -> int:
    """Kafka's keyed partitioner, written out independently of kafka-python."""
    m, r, length = 0x5BD1E995, 24, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    i = 0
    while length - i >= 4:
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
        i += 4
    rest = key[i:]
    if len(rest) == 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if rest:
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % count


def test_kafka_sink_names_partitions_and_counts() -> None:
    sink = KafkaSink("a:9092", topic_name=lambda t: "p." + t, partitions=5, replication=1)
    fake = FakeProducer.made[-1]
    assert fake.config["client_id"] == "ioc-simulate"
    fake.partitions["p.ioc.payments.v1"] = set(range(5))
    keys = [b"", b"a", b"ab", b"abc", b"PAY-000123", b"abc"]
    for key in keys:
        sink.send("ioc.payments.v1", key, b"{}")
    sink.send("ioc.payments.v1", None, b"{}")
    assert sink.sent == 7
    assert [s[3] for s in fake.sent] == [murmur2_partition(k, 5) for k in keys] + [None]
    assert {s[0] for s in fake.sent} == {"p.ioc.payments.v1"}
    # The topic is created once, on first use, with the sink's partition count.
    assert [a.created for a in FakeAdmin.made] == [[("p.ioc.payments.v1", 5, 1)]]
    fake.futures[0].fail(KafkaError("nope"))
    with pytest.raises(SinkError, match=r"^Kafka did not take 1 message\(s\): KafkaError: nope$"):
        sink.close()
    assert fake.closed


def test_kafka_sink_keeps_asked_partitions() -> None:
    sink = KafkaSink(
        "a:9092", topic_name=lambda t: "r." + t, partitions=2, client_id="ioc-replay", noun="record"
    )
    fake = FakeProducer.made[-1]
    assert fake.config["client_id"] == "ioc-replay"
    assert fake.config["compression_type"] is None
    fake.partitions["r.ioc.feedback.v1"] = {0, 1}
    for partition, key in ((1, b"k"), (0, None), (2, b"k"), (-1, None)):
        sink.send("ioc.feedback.v1", key, b"{}", partition, time_ms=1000)
    assert [(s[0], s[2], s[3]) for s in fake.sent] == [
        ("r.ioc.feedback.v1", b"k", 1),
        ("r.ioc.feedback.v1", None, 0),
        # Beyond the topic's partitions: the key's partition, as Kafka's partitioner places it.
        ("r.ioc.feedback.v1", b"k", murmur2_partition(b"k", 2)),
        ("r.ioc.feedback.v1", None, None),
    ]
    assert [a.created for a in FakeAdmin.made] == [[("r.ioc.feedback.v1", 2, 1)]]
    sink.ensure_topics(["ioc.payments.v1"])
    assert FakeAdmin.made[-1].created == [("r.ioc.payments.v1", 2, 1)]
    fake.futures[1].fail(KafkaError("gone"))
    with pytest.raises(SinkError, match=r"^Kafka did not take 1 record\(s\): KafkaError: gone$"):
        sink.flush()
