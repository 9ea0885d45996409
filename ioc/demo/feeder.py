"""Simulator -> topic step of the demo: run the plan's passes over the stream into a sink,
fast for history and paced for the live part, and track which stream time is stored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ioc.demo.plan import Interval, Pass, Plan, merge
from simulators.core import Item
from simulators.sinks import Sink

_CHECK_EVERY = 512  # items between checks of stop, backpressure and progress


class Durability(Protocol):
    """When is what a sink took stored for good (in the database, or in Kafka)?"""

    def mark(self) -> int:
        """A token for everything sent so far."""
        ...

    def reached(self, token: int) -> bool:
        """Whether everything sent up to `token` is stored."""
        ...


class CountingSink:
    """Counts what it forwards; with `consumed`, waits while too much is not yet consumed."""

    def __init__(
        self,
        inner: Sink,
        *,
        consumed: Callable[[], int] | None = None,
        high_water: int = 20_000,
        stop: threading.Event | None = None,
    ) -> None:
        self.inner = inner
        self.sent = 0
        self._consumed = consumed
        self._high = high_water
        self._low = high_water // 2
        self._stop = stop or threading.Event()

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.inner.send(topic, key, value)
        self.sent += 1
        if self._consumed is not None and not self.sent % _CHECK_EVERY:
            self._hold()

    def _hold(self) -> None:
        """Backpressure: the in-process bus is memory, so the producer waits for the consumer."""
        consumed = self._consumed
        if consumed is None or self.sent - consumed() <= self._high:
            return
        self.inner.flush()
        while self.sent - consumed() > self._low and not self._stop.wait(0.005):
            pass

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


class IngestedDurability:
    """In-process bus: stored once the ingest loop has committed that many records."""

    def __init__(self, sink: CountingSink, consumed: Callable[[], int]) -> None:
        self._sink = sink
        self._consumed = consumed

    def mark(self) -> int:
        return self._sink.sent

    def reached(self, token: int) -> bool:
        return self._consumed() >= token


class FlushedDurability:
    """Kafka: stored once the producer's flush returns (acks=all); ingest resumes from there."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def mark(self) -> int:
        self._sink.flush()
        return 0

    def reached(self, token: int) -> bool:
        return True


class LiveClock:
    """Wall time until the live part starts; then start + elapsed x speed (speed 1: wall time)."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.time) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = wall
        self._origin: tuple[float, float] | None = None

    def begin(self) -> None:
        if self._origin is None:
            now = self._wall()
            self._origin = (now, now)

    def utc_now(self) -> datetime:
        """now() as an aware datetime (the dashboard's clock)."""
        return datetime.fromtimestamp(self.now(), UTC)

    def now(self) -> float:
        wall = self._wall()
        if self._origin is None:
            return wall
        sim0, wall0 = self._origin
        return sim0 + (wall - wall0) * self.speed


@dataclass
class FeedProgress:
    """Where emission stands (read by the progress bar from another thread)."""

    backfill_total_s: int = 0
    backfill_emitted_s: int = 0
    emitted: int = 0
    live: bool = False
    finished: bool = False


class Feeder:
    """Runs a plan's passes; each pass regenerates the stream from its start."""

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
        self._pending: list[tuple[Interval, int]] = []
        self.progress = FeedProgress(backfill_total_s=plan.backfill_seconds)
        self._segments_done_s = 0

    # -- what is stored ---------------------------------------------------------------------
    @property
    def sent(self) -> int:
        """Messages sent so far (history and live)."""
        return self._sink.sent

    def settled(self) -> bool:
        """Whether every interval noted as sent is also stored."""
        self.stored()
        with self._lock:
            return not self._pending

    def stored(self) -> tuple[Interval, ...]:
        """Stream time whose events are all stored (resolves pending marks as they land)."""
        with self._lock:
            still: list[tuple[Interval, int]] = []
            for interval, token in self._pending:
                if self._durability.reached(token):
                    self._done.append(interval)
                else:
                    still.append((interval, token))
            self._pending = still
            self._done = list(merge(self._done))
            return tuple(self._done)

    def _note(self, interval: Interval) -> None:
        if interval[1] > interval[0]:
            token = self._durability.mark()
            with self._lock:
                self._pending.append((interval, token))

    # -- emission ---------------------------------------------------------------------------
    def run(self) -> None:
        """Every pass in turn, until the end of the last (never, if it goes live) or stop."""
        try:
            for p in self.plan.passes:
                if self._stop.is_set():
                    break
                self._run_pass(p, self._make_items())
        finally:
            self._sink.flush()
            self.progress.finished = True

    def _run_pass(self, p: Pass, items: Iterator[Item]) -> None:
        segments = list(p.segments)
        index = 0
        send = self._sink.send
        n = 0
        live_started = False
        last_live_t: int | None = None
        next_live_note = time.monotonic() + 2.0
        for t, _feed, topic, key, value, _ward in items:
            while index < len(segments) and t >= segments[index][1]:
                self._finish_segment(segments[index])
                index += 1
            n += 1
            if not n % _CHECK_EVERY and self._stop.is_set():
                return
            if index < len(segments):
                a = segments[index][0]
                if t >= a:
                    send(topic, key, value)
                    self.progress.emitted += 1
                    if not n % _CHECK_EVERY:
                        self.progress.backfill_emitted_s = self._segments_done_s + t - a
                continue
            if p.live_from is None:
                return
            if t < p.live_from:
                continue
            if not live_started:
                live_started = True
                self.progress.live = True
                self._clock.begin()
            if t > self._clock.now() and not self._wait_for(t):
                break
            send(topic, key, value)
            self.progress.emitted += 1
            # Everything before t has been sent; note it now and then as stored-to-be.
            if last_live_t is not None and t > last_live_t and time.monotonic() >= next_live_note:
                self._note_live(p.live_from, t)
                next_live_note = time.monotonic() + 2.0
            last_live_t = t
        else:
            # The stream ended (only with an ending generator, as in tests).
            for seg in segments[index:]:
                self._finish_segment(seg)
        if last_live_t is not None and p.live_from is not None:
            self._note_live(p.live_from, last_live_t)

    def _finish_segment(self, seg: Interval) -> None:
        self._note(seg)
        self._segments_done_s += seg[1] - seg[0]
        self.progress.backfill_emitted_s = self._segments_done_s

    def _note_live(self, live_from: int, before: int) -> None:
        """[live_from, before) is sent; it counts as stored once the durability token lands."""
        self._sink.flush()
        token = self._durability.mark()
        with self._lock:
            self._pending.append(((live_from, before), token))

    def _wait_for(self, t: int) -> bool:
        """Sleep until the live clock reaches t; False when stop was requested."""
        self._sink.flush()  # let the consumer see what is out before idling
        while True:
            ahead = (t - self._clock.now()) / self._clock.speed
            if ahead <= 0:
                return True
            if self._stop.wait(min(ahead, self._slice)):
                return False
