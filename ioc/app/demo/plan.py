"""Simulator step of the demo: which simulated time to emit, in which order, and what is stored.

The demo's feeds are one deterministic simulator stream (one start, one seed, no end): every
pass over it regenerates the same events with the same ids, so a part emitted twice is absorbed
by the event_id keys. A pass emits some intervals as fast as possible and skips the rest. The
first pass loads the last hours, so that the map has current values within seconds, then goes
on in real time; further passes load the rest of the last day, then the older days, beside it.

What has been stored is recorded as intervals of stream time in a small state file in the data
directory, so a second start carries on from where the data ends.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioc.core.errors import IocError

DAY = 86_400
FIRST_S = 3 * 3600  # loaded before anything else
STATE_FILE = "demo.json"
STATE_VERSION = 1
# Resuming a stream regenerates it from its start; past this age a new stream is cheaper.
MAX_STREAM_AGE_S = 45 * DAY

Interval = tuple[int, int]  # [start, end) in epoch seconds


@dataclass(frozen=True)
class Stream:
    """The one simulator run the demo emits from (start in epoch seconds)."""

    start: int
    seed: int = 1
    volume_scale: float = 1.0


@dataclass(frozen=True)
class DemoState:
    """What the data directory says about the database it feeds."""

    database: str
    stream: Stream
    done: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class Pass:
    """One generation pass: `segments` (ascending) as fast as possible, then live if set."""

    segments: tuple[Interval, ...]
    live_from: int | None = None


@dataclass(frozen=True)
class Plan:
    """The stream, what is already stored of it, and the passes to run now."""

    stream: Stream
    done: tuple[Interval, ...]
    passes: tuple[Pass, ...]
    live_from: int
    reason: str

    @property
    def backfill(self) -> tuple[Interval, ...]:
        """Every interval to emit before the live part, in emission order."""
        return tuple(seg for p in self.passes for seg in p.segments)

    @property
    def backfill_seconds(self) -> int:
        return sum(b - a for a, b in self.backfill)


def merge(intervals: Iterable[Interval]) -> tuple[Interval, ...]:
    """Sorted, non-empty, non-overlapping intervals (touching ones joined)."""
    out: list[list[int]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def subtract(span: Interval, done: Sequence[Interval]) -> tuple[Interval, ...]:
    """The parts of `span` not covered by `done`."""
    a, b = span
    out: list[Interval] = []
    cursor = a
    for x, y in merge(done):
        if y <= cursor or x >= b:
            continue
        if x > cursor:
            out.append((cursor, x))
        cursor = max(cursor, y)
    if cursor < b:
        out.append((cursor, b))
    return tuple(out)


def clip(intervals: Iterable[Interval], lo: int, hi: int) -> tuple[Interval, ...]:
    """The intervals cut to [lo, hi)."""
    return merge((max(a, lo), min(b, hi)) for a, b in intervals)


def make_plan(
    *,
    now: int,
    days: float,
    state: DemoState | None,
    database: str,
    latest_in_db: int | None,
    seed: int = 1,
    volume_scale: float = 1.0,
    first_s: int = FIRST_S,
    recent_s: int = DAY,
) -> Plan:
    """The passes that bring the database to `days` of history up to `now`, then go live.

    latest_in_db: the newest event time the database holds (None: it holds none).
    """
    history_start = now - int(days * DAY)
    stream: Stream
    done: tuple[Interval, ...]
    usable = (
        state is not None
        and state.database == database
        and latest_in_db is not None
        and state.stream.volume_scale == volume_scale
        and state.stream.start >= now - MAX_STREAM_AGE_S
    )
    if state is not None and usable:
        stream, done = state.stream, merge(state.done)
        reason = "resuming the demo's stream"
    elif latest_in_db is not None:
        # Data we did not record (another run, another tool, an old stream): keep it and go on
        # from where it ends, with a new stream, so nothing is counted twice.
        start = max(history_start, latest_in_db + 1)
        # Rounded up: a second of the new stream must never overlap the data already there.
        stream, done = Stream(_minute(start + 59), seed, volume_scale), ()
        reason = "continuing after the data already in the database"
    else:
        stream, done = Stream(_minute(history_start), seed, volume_scale), ()
        reason = "new database: backfilling history"
    wanted = subtract((max(stream.start, history_start), now), done)
    # Emission order: the last hours (enough for "now" and the current AQI), then the rest of
    # the last day ("today", "last 24 h"), then the older days. passes[0] then goes live; the
    # others run beside it. Each pass costs one regeneration of the stream up to its end.
    first_from = max(now - first_s, stream.start)
    recent_from = min(max(now - recent_s, stream.start), first_from)
    passes = [Pass(clip(wanted, first_from, now), live_from=now)]
    for lo, hi in ((recent_from, first_from), (stream.start, recent_from)):
        part = clip(wanted, lo, hi)
        if part:
            passes.append(Pass(part))
    return Plan(stream, done, tuple(passes), now, reason)


def _minute(t: int) -> int:
    return t - t % 60


# -- the state file -----------------------------------------------------------------------


class StateError(IocError):
    """The state file exists but cannot be used; the message is one line."""


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def load_state(data_dir: Path) -> DemoState | None:
    """The recorded state, or None when there is none (or it is from another version)."""
    path = state_path(data_dir)
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StateError(f"{path} is unreadable ({exc}); delete it to start afresh") from None
    try:
        if raw.get("version") != STATE_VERSION:
            return None
        s = raw["stream"]
        stream = Stream(int(s["start"]), int(s["seed"]), float(s["volume_scale"]))
        done = merge((int(a), int(b)) for a, b in raw["done"])
        return DemoState(str(raw["database"]), stream, done)
    except (AttributeError, KeyError, TypeError, ValueError):
        raise StateError(f"{path} is not a demo state file; delete it to start afresh") from None


def save_state(data_dir: Path, state: DemoState) -> None:
    """Write atomically, so a killed demo never leaves half a file."""
    payload = {
        "version": STATE_VERSION,
        "database": state.database,
        "stream": {
            "start": state.stream.start,
            "seed": state.stream.seed,
            "volume_scale": state.stream.volume_scale,
        },
        "done": [list(i) for i in merge(state.done)],
    }
    fd, tmp = tempfile.mkstemp(prefix=".demo.", suffix=".json", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, state_path(data_dir))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
