"""Consumer step of the demo, as the terminal sees it: the backfill's progress bar and rates."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def format_bar(done_s: float, total_s: float, events: int, rate: float) -> str:
    """`history [#####-----]  3.2/7.0 days  412,000 events  18,500 events/s`."""
    total_days = total_s / 86_400
    done_days = min(done_s, total_s) / 86_400
    fraction = done_s / total_s if total_s > 0 else 1.0
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return (
        f"history [{bar}] {done_days:4.1f}/{total_days:.1f} days  "
        f"{events:,} events  {rate:,.0f} events/s"
    )


class RateMeter:
    """Events per second over the last `window` seconds of samples."""

    def __init__(self, window: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, count: int) -> float:
        """Record the running total `count` now; returns the rate over the window."""
        now = self._clock()
        self._samples.append((now, count))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        t0, c0 = self._samples[0]
        return (count - c0) / (now - t0) if now > t0 else 0.0


class StatusLine:
    """A line rewritten in place on a terminal; on a pipe or file, one line every `every` s."""

    def __init__(self, out: TextIO, every: float = 5.0) -> None:
        self._out = out
        self._tty = out.isatty()
        self._every = every
        self._last = float("-inf")
        self._open = False
        # The dashboard's "ready" line comes from another thread than the bar.
        self._lock = threading.Lock()

    def show(self, text: str, force: bool = False) -> None:
        with self._lock:
            self._show(text, force)

    def _show(self, text: str, force: bool) -> None:
        now = time.monotonic()
        if self._tty:
            self._out.write("\r" + text.ljust(78))
            self._open = True
        elif force or now - self._last >= self._every:
            self._out.write(text + "\n")
            self._last = now
        else:
            return
        self._out.flush()

    def say(self, text: str) -> None:
        """A permanent line (ends the in-place line first)."""
        with self._lock:
            self._end()
            self._out.write(text + "\n")
            self._out.flush()

    def end(self) -> None:
        with self._lock:
            self._end()

    def _end(self) -> None:
        if self._open:
            self._out.write("\n")
            self._open = False
