"""Simulator step of the data path: the one simulated clock that paces emission.

Modes: real time (speed 1), accelerated (speed N: N simulated seconds per wall second) and as
fast as possible (speed None) for backfilling history. Generation never reads this clock; only
emission waits on it, so output is the same in every mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Sleep in slices so that a stop request and the progress line are never held up for long.
_MAX_SLICE = 0.25


class SimClock:
    """Simulated time = start + (wall seconds since the clock started) x speed."""

    def __init__(
        self,
        start: int,
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
        """As fast as possible: simulated time jumps to each event."""
        return self.speed is None

    def now(self) -> float:
        """Current simulated time (epoch seconds)."""
        if self.speed is None:
            return self._latest
        return self.start + (self._monotonic() - self._wall0) * self.speed

    def wait_until(self, t: float, stop: threading.Event | None = None) -> bool:
        """Block until simulated now >= t; False if `stop` was set while waiting."""
        if self.speed is None:
            if t > self._latest:
                self._latest = t
            return not (stop is not None and stop.is_set())
        while True:
            if stop is not None and stop.is_set():
                return False
            ahead = (t - self.now()) / self.speed
            if ahead <= 0:
                return True
            pause = min(ahead, _MAX_SLICE)
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
