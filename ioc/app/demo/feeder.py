"""Simulator -> topic step of the demo: run the plan's passes over the stream into a sink, fast
for history and paced for the live part, and track which stream time is stored.

The first pass loads the most recent day and then goes live; the older days follow in a second
thread once it is live, so the dashboard's feeds stay fresh while the history fills in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ioc.app.demo.plan import Interval, Pass, Plan, merge
from ioc.core.pacing import PacingClock
from ioc.core.sinks import Sink
from simulators.core import Item
from streams.transport.bus import Bus

_CHECK_EVERY = 512  # items between checks of stop, backpressure and progress
LIVE_NOTE_EVERY_S = 2.0


class Durability(Protocol):
    """When is what a sink took stored for good (in the database, or in Kafka)?"""

    def mark(self) -> Any:
        """A token for everything sent so far."""
        ...

    def reached(self, token: Any) -> bool:
        """Whether everything sent before `token` was taken is stored."""
        ...


class BusOffsets:
    """The demo's consumer group on the in-process bus: exact per-partition progress."""

    def __init__(self, bus: Bus, group: str, topics: Iterable[str]) -> None:
        self._bus = bus
        self._group = group
        self._topics = tuple(topics)

    def ends(self) -> dict[tuple[str, int], int]:
        return {
            (topic, p): end
            for topic in self._topics
            for p, end in self._bus.end_offsets(topic).items()
        }

    def committed(self, topic: str, partition: int) -> int:
        return self._bus.committed(self._group, topic, partition) or 0

    def backlog(self) -> int:
        """Records produced but not yet committed by the ingest loop."""
        return sum(end - self.committed(t, p) for (t, p), end in self.ends().items())


class IngestedDurability:
    """In-process bus: stored once the ingest loop has committed past each partition's end as
    it was when the mark was taken (the bus is memory; only the database keeps anything)."""

    def __init__(self, offsets: BusOffsets) -> None:
        self._offsets = offsets

    def mark(self) -> dict[tuple[str, int], int]:
        return self._offsets.ends()

    def reached(self, token: dict[tuple[str, int], int]) -> bool:
        return all(self._offsets.committed(t, p) >= end for (t, p), end in token.items())


class FlushedDurability:
    """Kafka: stored once the producer's flush returns (acks=all); ingest resumes from there."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def mark(self) -> None:
        self._sink.flush()

    def reached(self, token: None) -> bool:
        return True


class CountingSink:
    """Counts what it forwards; with `backlog`, waits while too much is not yet consumed."""

    def __init__(
        self,
        inner: Sink,
        *,
        backlog: Callable[[], int] | None = None,
        high_water: int = 20_000,
        stop: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.sent = 0
        self._backlog = backlog
        self._high = high_water
        self._low = high_water // 2
        self._stop = stop or threading.Event()

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        self.inner.send(topic, key, value, partition, time_ms)
        self.sent += 1
        if self._backlog is not None and not self.sent % _CHECK_EVERY:
            self._hold(self._backlog)

    def _hold(self, backlog: Callable[[], int]) -> None:
        """Backpressure: the in-process bus is memory, so the producer waits for the consumer."""
        if backlog() <= self._high:
            return
        self.inner.flush()
        while backlog() > self._low and not self._stop.wait(0.005):
            pass

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class LiveClock:
    """Wall time until the live part starts; from then on the one PacingClock, started at that
    wall time (speed 1: wall time, speed N: N simulated seconds per wall second)."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = wall
        self._pacing: PacingClock | None = None

    def begin(self) -> None:
        if self._pacing is None:
            self._pacing = PacingClock(self._wall(), self.speed, monotonic=self._wall)

    def utc_now(self) -> datetime:
        """now() as an aware datetime (the dashboard's clock)."""
        return datetime.fromtimestamp(self.now(), UTC)

    def now(self) -> float:
        return self._wall() if self._pacing is None else self._pacing.now()


@dataclass
class FeedProgress:
    """Where emission stands (read by the progress bar from another thread)."""

    backfill_total_s: int = 0
    backfill_emitted_s: int = 0
    live: bool = False
    backfill_sent: bool = False
    finished: bool = False


class Feeder:
    """Runs a plan: passes[0] (recent day, then live) here; passes[1:] (older days) in a
    background thread started when passes[0] goes live. Each pass regenerates the stream."""

    def __init__(
        self,
        plan: Plan,
        make_items: Callable[[], Iterator[Item]],
        sink: CountingSink,
        durability: Durability,
        clock: LiveClock,
        stop: threading.Event,
        *,
        sleep_slice: float = 0.25,
    ) -> None:
        self.plan = plan
        self._make_items = make_items
        self._sink = sink
        self._durability = durability
        self._clock = clock
        self._stop = stop
        self._slice = sleep_slice
        self._lock = threading.Lock()
        self._done: list[Interval] = list(plan.done)
        self._pending: list[tuple[Interval, Any]] = []
        self._segments_done_s = 0
        self._background: threading.Thread | None = None
        self.progress = FeedProgress(backfill_total_s=plan.backfill_seconds)

    # -- what is stored ---------------------------------------------------------------------
    @property
    def sent(self) -> int:
        """Messages sent so far (history and live)."""
        return self._sink.sent

    def stored(self) -> tuple[Interval, ...]:
        """Stream time whose events are all stored (resolves pending marks as they land)."""
        with self._lock:
            still: list[tuple[Interval, Any]] = []
            for interval, token in self._pending:
                if self._durability.reached(token):
                    self._done.append(interval)
                else:
                    still.append((interval, token))
            self._pending = still
            self._done = list(merge(self._done))
            return tuple(self._done)

    def settled(self) -> bool:
        """Whether every interval noted as sent is also stored."""
        self.stored()
        with self._lock:
            return not self._pending

    def history_stored(self) -> bool:
        """The whole backfill was sent and is stored."""
        return self.progress.backfill_sent and self.settled()

    def _note(self, interval: Interval) -> None:
        if interval[1] > interval[0]:
            token = self._durability.mark()
            with self._lock:
                self._pending.append((interval, token))

    # -- emission ---------------------------------------------------------------------------
    def run(self) -> None:
        """passes[0] until its end (never, when live) or stop; then wait for the background."""
        passes = self.plan.passes
        try:
            if passes:
                self._run_pass(passes[0], self._make_items())
            if self._background is None:
                self._run_background(passes[1:])  # passes[0] never went live (tests, stop)
        finally:
            if self._background is not None:
                self._background.join()
            self._sink.flush()
            self.progress.finished = True

    def _went_live(self) -> None:
        self.progress.live = True
        self._clock.begin()
        rest = self.plan.passes[1:]
        self._background = threading.Thread(
            target=self._run_background, args=(rest,), name="simulators-history", daemon=True
        )
        self._background.start()

    def _run_background(self, passes: tuple[Pass, ...]) -> None:
        for p in passes:
            if self._stop.is_set():
                return
            self._run_pass(p, self._make_items())
        if not self._stop.is_set():
            self.progress.backfill_sent = True

    def _run_pass(self, p: Pass, items: Iterator[Item]) -> None:
        segments = p.segments
        index = 0
        send = self._sink.send
        n = 0
        last_live_t: int | None = None
        next_note = time.monotonic() + LIVE_NOTE_EVERY_S
        for t, _feed, topic, key, value, _ward in items:
            while index < len(segments) and t >= segments[index][1]:
                self._finish_segment(segments[index])
                index += 1
            n += 1
            if not n % _CHECK_EVERY and self._stop.is_set():
                return
            if index < len(segments):
                start = segments[index][0]
                if t >= start:
                    send(topic, key, value)
                    if not n % _CHECK_EVERY:
                        self.progress.backfill_emitted_s = self._segments_done_s + t - start
                continue
            if p.live_from is None:
                return
            if t < p.live_from:
                continue
            if last_live_t is None:
                self._went_live()
                last_live_t = p.live_from
            if t > self._clock.now() and not self._wait_for(t):
                break
            # Everything before t has been sent: note it now and then as stored-to-be.
            if t > last_live_t and time.monotonic() >= next_note:
                self._note((p.live_from, t))
                next_note = time.monotonic() + LIVE_NOTE_EVERY_S
            send(topic, key, value)
            last_live_t = t
        else:
            # The stream ended (only a finite generator does, as in tests).
            for seg in segments[index:]:
                self._finish_segment(seg)
        if last_live_t is not None and p.live_from is not None:
            self._sink.flush()
            self._note((p.live_from, last_live_t))

    def _finish_segment(self, seg: Interval) -> None:
        self._note(seg)
        self._segments_done_s += seg[1] - seg[0]
        self.progress.backfill_emitted_s = self._segments_done_s

    def _wait_for(self, t: int) -> bool:
        """Sleep until the live clock reaches t; False when stop was requested."""
        self._sink.flush()  # let the consumer see what is out before idling
        while True:
            ahead = (t - self._clock.now()) / self._clock.speed
            if ahead <= 0:
                return True
            if self._stop.wait(min(ahead, self._slice)):
                return False
