"""Simulator step of the data path: one run of the four feeds, merged, paced, sent to a sink."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ioc.core.citypack import CityPack
from ioc.core.feeds import AIR_QUALITY, DOSSIERS, FEED_NAMES, FEEDBACK, PAYMENTS
from ioc.core.pacing import PacingClock
from ioc.core.sinks import Sink
from simulators.air_quality import AirQualitySimulator
from simulators.context import SimContext
from simulators.core import Item, run_tag
from simulators.dossiers import DossierSimulator
from simulators.feedback import FeedbackSimulator
from simulators.params import SimParams
from simulators.payments import PaymentSimulator
from simulators.scenarios import ScenarioSpec, compile_effects, poison_items
from simulators.timebase import WorkCalendar, from_datetime, local_day, to_datetime

# Item feed index -> name in summaries; index POISON_INDEX (len(FEEDS)) is the poison stream.
FEED_OF_INDEX = (*FEED_NAMES, "poison")


@dataclass(frozen=True)
class SimConfig:
    """Everything that determines the output: same config and pack give the same bytes."""

    start: datetime
    duration: timedelta | None = None
    seed: int = 1
    feeds: tuple[str, ...] = FEED_NAMES
    scenarios: tuple[ScenarioSpec, ...] = ()
    params: SimParams = field(default_factory=SimParams)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.duration is not None and self.duration.total_seconds() <= 0:
            raise ValueError("duration must be positive")
        unknown = set(self.feeds) - set(FEED_NAMES)
        if unknown or not self.feeds:
            raise ValueError(f"unknown feed(s): {sorted(unknown)}")

    @property
    def start_s(self) -> int:
        """Start in epoch seconds."""
        return from_datetime(self.start)

    @property
    def end_s(self) -> int | None:
        """End (exclusive) in epoch seconds; None for an endless run."""
        if self.duration is None:
            return None
        return self.start_s + int(self.duration.total_seconds())

    def signature(self, pack_name: str) -> str:
        """A stable text naming everything that shapes the output (for ids)."""
        return repr(
            (
                pack_name,
                self.seed,
                self.start_s,
                self.end_s,
                self.feeds,
                tuple(str(s) for s in self.scenarios),
                self.params,
            )
        )


def make_context(config: SimConfig, pack: CityPack) -> SimContext:
    """The run context: calendar with scenario closures, effects, id tag."""
    start, end = config.start_s, config.end_s
    effects = compile_effects(
        config.scenarios, seed=config.seed, start=start, end=end, pack=pack, params=config.params
    )
    calendar = WorkCalendar.from_ranges(config.params.holidays).with_closed(effects.closed_days)
    return SimContext(
        seed=config.seed,
        start=start,
        end=end,
        pack=pack,
        params=config.params,
        calendar=calendar,
        tag=run_tag(config.signature(pack.name)),
        effects=effects,
    )


def generate(config: SimConfig, pack: CityPack) -> Iterator[Item]:
    """Every item of the run in event-time order (endless if the config has no duration)."""
    ctx = make_context(config, pack)
    streams: list[Iterator[Item]] = []
    builders: dict[str, Callable[[SimContext], Iterator[Item]]] = {
        DOSSIERS.name: lambda c: DossierSimulator(c).items(),
        PAYMENTS.name: lambda c: PaymentSimulator(c).items(),
        FEEDBACK.name: lambda c: FeedbackSimulator(c).items(),
        AIR_QUALITY.name: lambda c: AirQualitySimulator(c).items(),
    }
    for name in FEED_NAMES:
        if name in config.feeds:
            streams.append(builders[name](ctx))
    if ctx.effects.poison:
        streams.append(poison_items(ctx))
    # Items start with (time, feed index): distinct per stream, so ties never reach the bytes.
    return heapq.merge(*streams)


@dataclass
class Summary:
    """What a run emitted."""

    by_feed: dict[str, int] = field(default_factory=dict)
    by_ward: dict[str, int] = field(default_factory=dict)
    first: int | None = None
    last: int | None = None
    wall_seconds: float = 0.0
    stopped: bool = False

    @property
    def total(self) -> int:
        """All messages emitted."""
        return sum(self.by_feed.values())

    def rate(self) -> float:
        """Messages per wall-clock second."""
        return self.total / self.wall_seconds if self.wall_seconds > 0 else 0.0


# (events so far, simulated now, wall seconds)
SimProgress = Callable[[int, float, float], None]
# A flush costs a broker round trip: only worth it before a wait longer than this.
_FLUSH_BEFORE_WAIT_S = 0.05


def run(
    items: Iterator[Item],
    sink: Sink,
    clock: PacingClock,
    *,
    stop: threading.Event | None = None,
    progress: SimProgress | None = None,
    progress_every: float = 1.0,
) -> Summary:
    """Emit each item once the pacing clock reaches its time (the items are merged by event
    time); returns what was sent, counted per feed and per ward."""
    feed_counts = [0] * len(FEED_OF_INDEX)
    ward_counts: dict[str | None, int] = {}
    wall0 = time.monotonic()
    next_report = wall0 + progress_every
    n = 0
    first: int | None = None
    last: int | None = None
    stopped = False
    fast = clock.fast
    send = sink.send
    try:
        for t, index, topic, key, value, ward in items:
            if first is None:
                first = t
            if not fast and t > clock.now():
                if clock.ahead(t) > _FLUSH_BEFORE_WAIT_S:
                    sink.flush()  # let consumers see what is already out before idling
                    if progress is not None and time.monotonic() >= next_report:
                        progress(n, clock.now(), time.monotonic() - wall0)
                        next_report = time.monotonic() + progress_every
                if not clock.wait_until(t, stop):
                    stopped = True
                    break
            send(topic, key, value)
            last = t
            n += 1
            feed_counts[index] += 1
            ward_counts[ward] = ward_counts.get(ward, 0) + 1
            if not n & 1023:
                if stop is not None and stop.is_set():
                    stopped = True
                    break
                now = time.monotonic()
                if progress is not None and now >= next_report:
                    progress(n, t, now - wall0)
                    next_report = now + progress_every
    except KeyboardInterrupt:
        stopped = True  # Ctrl-C ends an endless real-time run: still flush and summarise
    sink.flush()
    wall = time.monotonic() - wall0
    return Summary(
        by_feed={name: c for name, c in zip(FEED_OF_INDEX, feed_counts, strict=True) if c},
        by_ward={w: c for w, c in sorted(ward_counts.items(), key=_ward_order) if w is not None},
        first=first,
        last=last,
        wall_seconds=wall,
        stopped=stopped,
    )


def _ward_order(item: tuple[str | None, int]) -> str:
    return item[0] or ""


def describe_time(t: float) -> str:
    """Simulated time for progress lines: 2025-03-01 14:05 (+07:00 implied)."""
    dt = to_datetime(int(t))
    return f"{dt:%Y-%m-%d %H:%M}"


def days_spanned(config: SimConfig) -> int | None:
    """Whole local days the run touches (None if endless)."""
    end = config.end_s
    if end is None:
        return None
    return local_day(end - 1) - local_day(config.start_s) + 1
