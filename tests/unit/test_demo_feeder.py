"""Demo feeder: passes emit exactly their intervals in order, live pacing waits for the clock,
backpressure holds the producer, and only durable intervals count as stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from ioc.app.demo.feeder import BusOffsets, CountingSink, Feeder, IngestedDurability, LiveClock
from ioc.app.demo.plan import Pass, Plan, Stream
from ioc.app.demo.progress import RateMeter, format_bar
from simulators.core import Item
from streams.transport.bus import Bus


class ListSink:
    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.flushes = 0

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        self.values.append(value)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


def items(times: list[int]) -> Iterator[Item]:
    for t in times:
        yield (t, 0, "ioc.payments.v1", b"k", str(t).encode(), "06649")


class FakeWall:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def plan_of(*passes: Pass) -> Plan:
    return Plan(Stream(0), (), passes, live_from=passes[-1].live_from or 0, reason="test")


class FakeBus:
    """Durability by hand: `consumed` of the list the sink filled counts as stored."""

    def __init__(self, sink: ListSink) -> None:
        self.sink = sink
        self.consumed = 0

    def mark(self) -> int:
        return len(self.sink.values)

    def reached(self, token: int) -> bool:
        return self.consumed >= token


def run_feeder(plan: Plan, times: list[int], wall: float) -> tuple[Feeder, ListSink, FakeBus]:
    sink = ListSink()
    counting = CountingSink(sink)
    durability = FakeBus(sink)
    clock = LiveClock(1.0, wall=FakeWall(wall))
    feeder = Feeder(plan, lambda: items(times), counting, durability, clock, threading.Event())
    feeder.run()
    return feeder, sink, durability


def test_recent_day_first_then_live_with_older_days_beside_it() -> None:
    times = list(range(0, 200, 3))
    plan = plan_of(Pass(((100, 150),), live_from=150), Pass(((0, 100),)))
    feeder, sink, durability = run_feeder(plan, times, wall=10_000)
    sent = [int(v) for v in sink.values]
    recent = [t for t in times if 100 <= t < 150]
    older = [t for t in times if t < 100]
    live = [t for t in times if t >= 150]
    assert sent[: len(recent)] == recent  # nothing else before the recent day is out
    rest = sent[len(recent) :]
    assert sorted(rest) == sorted(older + live)
    assert [t for t in rest if t < 100] == older and [t for t in rest if t >= 150] == live
    assert feeder.sent == len(sent)
    assert feeder.progress.backfill_sent and feeder.progress.finished
    assert feeder.stored() == () and not feeder.history_stored()
    durability.consumed = len(sent)
    # Both backfill segments and the live part up to (not including) its last second.
    assert feeder.stored() == ((0, times[-1]),)
    assert feeder.history_stored()


def test_an_interval_counts_as_stored_only_when_its_messages_are_consumed() -> None:
    times = list(range(0, 100))
    plan = plan_of(Pass(((50, 100),)), Pass(((0, 50),)))
    feeder, _, durability = run_feeder(plan, times, wall=10_000)
    durability.consumed = 50  # only the first segment's 50 messages
    assert feeder.stored() == ((50, 100),)
    assert not feeder.settled()
    durability.consumed = 100
    assert feeder.stored() == ((0, 100),)


def test_bus_durability_is_exact_per_partition() -> None:
    bus = Bus(default_partitions=2)
    bus.create_topic("a")
    offsets = BusOffsets(bus, "g", ["a"])
    durable = IngestedDurability(offsets)
    for i in range(10):
        bus.produce("a", b"x", key=b"%d" % i)
    token = durable.mark()
    assert offsets.backlog() == 10 and not durable.reached(token)
    consumer = bus.consumer("g", ["a"])
    records = consumer.poll(max_records=100)
    by_partition: dict[int, int] = {}
    for r in records:
        by_partition[r.partition] = r.offset + 1
    first, second = sorted(by_partition)
    consumer.commit({("a", first): by_partition[first]})
    assert not durable.reached(token)  # one partition done is not all of it
    consumer.commit({("a", second): by_partition[second]})
    assert durable.reached(token) and offsets.backlog() == 0


def test_live_part_waits_for_the_clock_and_stops_on_request() -> None:
    wall = FakeWall(1000.0)
    sink = ListSink()
    counting = CountingSink(sink)
    stop = threading.Event()
    clock = LiveClock(1.0, wall=wall)
    plan = plan_of(Pass((), live_from=990))
    feeder = Feeder(
        plan,
        lambda: items([995, 999, 1000, 1003, 1010]),
        counting,
        FakeBus(sink),
        clock,
        stop,
        sleep_slice=0.01,
    )
    thread = threading.Thread(target=feeder.run)
    thread.start()
    thread.join(0.3)
    # At wall 1000 the events up to 1000 are out; 1003 waits for the clock.
    assert [int(v) for v in sink.values] == [995, 999, 1000]
    assert thread.is_alive()
    wall.now = 1005.0
    thread.join(0.3)
    assert [int(v) for v in sink.values] == [995, 999, 1000, 1003]
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
    assert feeder.progress.live and feeder.progress.finished
    # Everything before the last sent second is recorded once consumed.
    assert feeder.stored() == ()
    durability = feeder._durability
    assert isinstance(durability, FakeBus)
    durability.consumed = 4
    assert feeder.stored() == ((990, 1003),)


def test_accelerated_clock_runs_speed_times_faster_after_live_begins() -> None:
    wall = FakeWall(100.0)
    clock = LiveClock(60.0, wall=wall)
    wall.now = 110.0
    assert clock.now() == 110.0  # wall time until the live part begins
    clock.begin()
    wall.now = 112.0
    assert clock.now() == 110.0 + 2 * 60


def test_backpressure_holds_the_producer_until_the_consumer_catches_up() -> None:
    consumed = [0]
    sink = ListSink()
    stop = threading.Event()
    counting = CountingSink(
        sink, backlog=lambda: counting.sent - consumed[0], high_water=1000, stop=stop
    )
    done = threading.Event()

    def produce() -> None:
        for i in range(5000):
            counting.send("t", None, b"%d" % i)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    thread.join(0.3)
    assert not done.is_set()
    assert 1000 < counting.sent <= 1000 + 512  # checked every 512 messages
    consumed[0] = counting.sent
    thread.join(0.3)
    assert counting.sent > 1500
    consumed[0] = 5000
    thread.join(2)
    assert done.is_set() and len(sink.values) == 5000


def test_progress_bar_and_rate() -> None:
    line = format_bar(3.5 * 86_400, 7 * 86_400, 412_000, 18_512.4)
    assert line.startswith("history [" + "#" * 12 + "-" * 12 + "]")
    assert "3.5/7.0 days" in line and "412,000 events" in line and "18,512 events/s" in line
    ticks = iter([0.0, 1.0, 2.0])
    meter = RateMeter(window=10.0, clock=lambda: next(ticks))
    meter.add(0)
    meter.add(500)
    assert meter.add(3000) == 1500.0
