"""The one pacing clock: emission follows stream time scaled by a speed (simulators and replay)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Sleep in slices so that a stop request and the progress line are never held up for long.
_MAX_SLICE_S = 0.25


class PacingClock:
    """Stream time = start + (wall seconds since the clock was made) x speed, in epoch seconds.

    Modes: real time (speed 1), accelerated (speed N: N stream seconds per wall second) and as
    fast as possible (speed None) for backfilling history or replaying at once. What is emitted
    never depends on this clock, only when, so output is the same in every mode. monotonic and
    sleep are seams for tests.
    """

    def __init__(
        self,
        start: float,
        speed: float | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed is not None and speed <= 0:
            raise ValueError("speed must be positive (or None for as fast as possible)")
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._sleep = sleep
        self._wall0 = monotonic()
        self._latest = float(start)

    @property
    def fast(self) -> bool:
        """As fast as possible: stream time jumps to each item."""
        return self.speed is None

    def now(self) -> float:
        """Current stream time (epoch seconds)."""
        if self.speed is None:
            return self._latest
        return self.start + (self._monotonic() - self._wall0) * self.speed

    def elapsed(self) -> float:
        """Wall seconds since the clock was made."""
        return self._monotonic() - self._wall0

    def _due(self, t: float, speed: float) -> float:
        # In wall time: sleeping exactly the difference then lands on it, where stream time
        # (wall time x speed) could keep a remainder too small to move the wall clock.
        return self._wall0 + (t - self.start) / speed

    def ahead(self, t: float) -> float:
        """Wall seconds until stream time t (0 when it is due, or when running flat out)."""
        if self.speed is None:
            return 0.0
        return max(0.0, self._due(t, self.speed) - self._monotonic())

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Block until stream time reaches t; False if `stop` was set while waiting."""
        if self.speed is None:
            if t > self._latest:
                self._latest = t
            return not (stop is not None and stop.is_set())
        due = self._due(t, self.speed)
        while True:
            if stop is not None and stop.is_set():
                return False
            ahead = due - self._monotonic()
            if ahead <= 0:
                return True
            pause = min(ahead, _MAX_SLICE_S)
            if stop is not None:
                stop.wait(pause)
            else:
                self._sleep(pause)


def parse_speed(text: str) -> float | None:
    """'max' (None), or a positive number such as 1 or 60; ValueError otherwise."""
    raw = text.strip().lower()
    if raw in {"max", "fast", "inf"}:
        return None
    try:
        value = float(raw.removeprefix("x"))
    except ValueError:
        raise ValueError(f"bad speed {text!r}; use 1 (real time), 60 (x60) or max") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"bad speed {text!r}; it must be a positive number or max")
    return value
