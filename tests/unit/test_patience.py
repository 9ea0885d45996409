"""Producers waiting out a broker outage (transport.patience and .producer), on a fake clock
and a fake kafka-python producer whose broker is down for a while."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from ioc.app.settings import Settings, SettingsError, parse_patience
from streams.transport.patience import BrokerWait, Patience
from streams.transport.producer import Producer


class Clock:
    """Fake monotonic time; sleeping advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.ticks: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        for tick in self.ticks:
            tick()


class GaveUpError(Exception):
    pass


def patience(clock: Clock, lines: list[str], seconds: float = 300, **kw: Any) -> Patience:
    return Patience(seconds=seconds, say=lines.append, clock=clock, sleep=clock.sleep, **kw)


def test_outage_lines_every_few_seconds_then_back() -> None:
    clock, lines = Clock(), list[str]()
    wait = BrokerWait(patience(clock, lines), "h:1", GaveUpError)
    wait.ok()  # no outage: nothing said
    for _ in range(13):  # one failure a second for 12 s
        wait.failed("KafkaTimeoutError: down")
        clock.sleep(1)
    assert lines == [
        "kafka: broker unreachable at h:1, waiting (0 s of 300 s)",
        "kafka: broker unreachable at h:1, waiting (5 s of 300 s)",
        "kafka: broker unreachable at h:1, waiting (10 s of 300 s)",
    ]
    wait.ok()
    assert lines[-1] == "kafka: broker at h:1 is back after 13 s"
    assert (wait.outages, wait.waiting) == (1, False)
    wait.failed("again")  # a new outage gets the whole patience again
    assert lines[-1].endswith("waiting (0 s of 300 s)") and wait.outages == 2


def test_patience_runs_out_with_one_line() -> None:
    clock, lines = Clock(), list[str]()
    wait = BrokerWait(
        patience(clock, lines, 30), "h:1", GaveUpError, pending=lambda: 1234, noun="record"
    )
    wait.failed("no answer", since=clock() - 10)
    clock.sleep(19.9)
    wait.failed("no answer")
    clock.sleep(0.1)
    with pytest.raises(GaveUpError) as info:
        wait.failed("KafkaTimeoutError: gone")
    assert str(info.value) == (
        "cannot reach Kafka at h:1 for 30 s (patience 30 s: --kafka-patience or "
        "IOC_KAFKA_PATIENCE): KafkaTimeoutError: gone; 1,234 record(s) not acknowledged"
    )
    assert "\n" not in str(info.value)
    assert wait.gave_up
    with pytest.raises(GaveUpError):  # once given up, every later wait gives up at once
        wait.failed("x")


def test_stop_and_interrupt_end_the_wait() -> None:
    clock, lines = Clock(), list[str]()
    stop = threading.Event()
    wait = BrokerWait(patience(clock, lines, stop=stop), "h:1", GaveUpError)
    wait.failed("down")
    stop.set()
    with pytest.raises(GaveUpError, match=r"^stopped while waiting for Kafka at h:1: down$"):
        wait.failed("down")

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    wait = BrokerWait(Patience(say=lines.append, clock=clock, sleep=interrupt), "h:1", GaveUpError)
    with pytest.raises(KeyboardInterrupt):
        wait.retry(_failing(KafkaTimeoutError("down"), 5), _retriable)
    # Ctrl-C while waiting: the flush that follows gives up at once instead of waiting 5 min.
    with pytest.raises(GaveUpError, match=r"^stopped while waiting"):
        wait.failed("down")


def _retriable(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError) and bool(exc.retriable)


def _failing(exc: BaseException, times: int, result: Any = "ok") -> Callable[[], Any]:
    calls = [0]

    def op() -> Any:
        calls[0] += 1
        if calls[0] <= times:
            raise exc
        return result

    return op


def test_retry_waits_for_the_probe_then_tries_again() -> None:
    clock, lines = Clock(), list[str]()
    wait = BrokerWait(patience(clock, lines), "h:1", GaveUpError)
    up_at = clock() + 27
    probes: list[float] = []

    def ready() -> bool:
        probes.append(clock())
        return clock() >= up_at

    op = _failing(KafkaTimeoutError("Unable to bootstrap"), 1, result=42)
    assert wait.retry(op, _retriable, ready) == 42
    assert 27 <= clock() - (up_at - 27) < 28  # resumed within a probe interval of broker-back
    assert lines[0] == ("kafka: broker unreachable at h:1, waiting (0 s of 300 s)") and lines[
        -1
    ].startswith("kafka: broker at h:1 is back after 27 s")
    assert len(lines) == 7  # 0, 5, ..., 25 s, then back
    with pytest.raises(ValueError, match="not an outage"):
        wait.retry(_failing(ValueError("not an outage"), 1), _retriable, ready)


def test_until_counts_only_time_without_acknowledgements() -> None:
    clock, lines = Clock(), list[str]()
    wait = BrokerWait(patience(clock, lines), "h:1", GaveUpError)
    acked = [0]

    def progress() -> int:
        # Acknowledgements flow for 10 s (slow but alive), stop for 20 s, then flow again.
        t = clock() - 1000
        if t < 10 or t >= 30:
            acked[0] += 1
        return acked[0]

    wait.until(lambda: clock() - 1000 >= 35, progress)
    assert lines[0] == "kafka: broker unreachable at h:1, waiting (2 s of 300 s)"
    assert lines[-1] == "kafka: broker at h:1 is back after 20 s"
    assert len(lines) == 5  # 2, 7, 12, 17 s, back


class Broker:
    """kafka-python's producer in front of a broker that is down between two fake times."""

    def __init__(self, clock: Clock, down: float, up: float) -> None:
        self.clock, self.down, self.up = clock, down, up
        self.sent: list[bytes] = []
        self.unacked: list[Any] = []
        self.written: list[bytes] = []
        self.closed_with: list[float | None] = []
        self._sender = _Sender()
        clock.ticks.append(self.deliver)  # kafka-python's own thread sends while time passes

    def is_up(self) -> bool:
        return not self.down <= self.clock() < self.up

    def send(self, topic: str, *, value: bytes, key: Any, partition: Any) -> Any:
        future = _Future(value)
        self.sent.append(value)
        self.unacked.append(future)
        return future

    def flush(self, timeout: float | None = None) -> None:
        if not self.is_up():
            self.clock.sleep(timeout or 0)  # kafka-python retries the batches meanwhile
            raise KafkaTimeoutError("Timeout waiting for future")
        self.deliver()

    def deliver(self) -> None:
        if not self.is_up():
            return
        for future in self.unacked:
            self.written.append(future.value)
            future.ack()
        self.unacked = []

    def close(self, timeout: float | None = None) -> None:
        # Like kafka-python: close flushes first, and raises before stopping its sender.
        self.closed_with.append(timeout)
        if timeout == 0 and self.unacked:
            raise KafkaTimeoutError("Timeout waiting for future")


class _Sender:
    def __init__(self) -> None:
        self.forced = False

    def force_close(self) -> None:
        self.forced = True


class _Future:
    def __init__(self, value: bytes) -> None:
        self.value = value
        self.callbacks: list[Callable[[object], object]] = []

    def add_callback(self, fn: Callable[[object], object]) -> _Future:
        self.callbacks.append(fn)
        return self

    def add_errback(self, fn: Callable[[BaseException], object]) -> _Future:
        return self

    def ack(self) -> None:
        for fn in self.callbacks:
            fn(None)


def producer_on(broker: Broker, pat: Patience, **kw: Any) -> Producer:
    return Producer("h:1", client_id="t", patience=pat, producer_factory=lambda **c: broker, **kw)


def test_producer_keeps_its_place_through_an_outage() -> None:
    clock, lines = Clock(), list[str]()
    broker = Broker(clock, down=clock() + 1, up=clock() + 28)
    producer = producer_on(broker, patience(clock, lines), max_pending=10)
    values = [b"%d" % i for i in range(40)]
    for v in values[:8]:
        producer.send("t", v, None, None)
    clock.sleep(1)  # the broker goes away with 8 records handed over, unacknowledged
    for v in values[8:]:
        # The 11th pending record waits until half are acknowledged: after the outage.
        producer.send("t", v, None, None)
    producer.flush()
    assert clock() - 1000 >= 28
    assert broker.written == values  # each once, in order: nothing dropped, doubled or skipped
    assert producer.pending() == 0
    assert lines[0].startswith("kafka: broker unreachable at h:1, waiting (")
    assert lines[-1].startswith("kafka: broker at h:1 is back after ")
    producer.close()
    assert broker.closed_with == [None]


def test_an_outage_is_dated_from_the_last_acknowledgement_seen_while_sending() -> None:
    clock, lines = Clock(), list[str]()
    broker = Broker(clock, down=clock() + 5, up=clock() + 60)
    producer = producer_on(broker, patience(clock, lines))
    for i in range(4000):  # 40 s of sending; the broker goes away after 5 s
        producer.send("t", b"%d" % i, None, None)
        clock.sleep(0.01)
    producer.flush()
    # Records were queued for 35 s before the producer had to wait: the outage counts them,
    # from the last acknowledgement seen (checked every 1,024 sends: here at 10 s).
    assert lines[0] == "kafka: broker unreachable at h:1, waiting (30 s of 300 s)"
    assert lines[-1] == "kafka: broker at h:1 is back after 50 s"  # 10 s -> 60 s
    assert len(broker.written) == 4000


def test_producer_gives_up_after_its_patience_and_closes_at_once() -> None:
    clock, lines = Clock(), list[str]()
    broker = Broker(clock, down=clock(), up=clock() + 3600)
    producer = producer_on(broker, patience(clock, lines, 60), noun="record", error=GaveUpError)
    for i in range(5):
        producer.send("t", b"%d" % i, None, None)
    with pytest.raises(GaveUpError, match=r"for 6\d s .*; 5 record\(s\) not acknowledged$"):
        producer.flush()
    assert 60 <= clock() - 1000 < 62
    producer.close()  # no second wait of a whole patience
    assert broker.closed_with == [0] and broker._sender.forced
    assert len(lines) == 12  # 2 s, then every 5 s up to 57 s


def test_connect_waits_for_a_broker_that_is_still_starting() -> None:
    clock, lines = Clock(), list[str]()
    broker = Broker(clock, down=0, up=clock() + 12)

    def factory(**config: Any) -> Broker:
        if not broker.is_up():
            clock.sleep(config["bootstrap_timeout_ms"] / 1000)
            raise KafkaTimeoutError("Unable to bootstrap from ['h:1']")
        return broker

    producer = Producer(
        "h:1",
        client_id="t",
        patience=patience(clock, lines),
        producer_factory=factory,
        probe=lambda addresses: broker.is_up(),
    )
    assert producer.pending() == 0 and 12 <= clock() - 1000 < 13
    assert lines[-1] == "kafka: broker at h:1 is back after 12 s"


def test_send_retries_a_metadata_wait_and_real_errors_are_one_line() -> None:
    clock, lines = Clock(), list[str]()
    broker = Broker(clock, down=0, up=0)
    producer = producer_on(broker, patience(clock, lines), error=GaveUpError)
    real_send = broker.send
    fails = [2]

    def send(topic: str, **kw: Any) -> Any:
        if fails[0]:
            fails[0] -= 1
            clock.sleep(5)  # max_block_ms: kafka-python waited for metadata, queued nothing
            raise KafkaConnectionError("gone")
        return real_send(topic, **kw)

    broker.send = send  # type: ignore[method-assign]
    producer.send("t", b"x", None, None)
    assert broker.sent == [b"x"] and producer.pending() == 1
    assert lines[0] == "kafka: broker unreachable at h:1, waiting (5 s of 300 s)"

    def refuse(topic: str, **kw: Any) -> Any:
        raise KafkaError("bad")

    broker.send = refuse  # type: ignore[method-assign]
    with pytest.raises(GaveUpError, match=r"^Kafka did not take a message: KafkaError: bad$"):
        producer.send("t", b"y", None, None)  # not an outage: not waited for


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("300", 300.0), ("0", 0.0), ("90s", 90.0), ("5m", 300.0), ("1.5h", 5400.0), ("24h", 86400)],
)
def test_parse_patience(raw: str, seconds: float) -> None:
    assert parse_patience("X", raw) == seconds


@pytest.mark.parametrize("raw", ["", "soon", "-1", "5d", "25h", "1e3"])
def test_bad_patience_is_one_line(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^IOC_KAFKA_PATIENCE=") as info:
        Settings.from_env({"IOC_KAFKA_PATIENCE": raw})
    assert "\n" not in str(info.value)


def test_patience_setting_default_and_env() -> None:
    assert Settings.from_env({}).kafka_patience == 300.0
    assert Settings.from_env({"IOC_KAFKA_PATIENCE": "2m"}).kafka_patience == 120.0
