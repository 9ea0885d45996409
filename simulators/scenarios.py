"""Simulator step of the data path: named, composable scenarios that bend the normal city.

A scenario is written `name` or `name:key=value,key=value` (lists joined with '+'), e.g.
`pollution_episode:wards=06673+06688,after=2h,hours=12,factor=6`. Each compiles to Effects that
the generators consult; several scenarios combine by adding their effects.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from ioc.core.citypack import CityPack
from ioc.core.errors import IocError
from ioc.core.feeds import FEEDS
from simulators.air_quality import stations
from simulators.context import Effects, SimContext
from simulators.core import Item, Window, derive_seed, stream
from simulators.params import SimParams
from simulators.poison import poison_messages
from simulators.timebase import DAY, day_number, day_start, local_day, parse_duration, to_datetime

# The poison stream merges after the feeds' own streams (feed indexes 0..len(FEEDS) - 1).
POISON_INDEX: Final = len(FEEDS)


class ScenarioError(IocError, ValueError):
    """A scenario name or option that cannot be used; the message is one line."""


@dataclass(frozen=True)
class ScenarioSpec:
    """A scenario by name with its options as given (strings)."""

    name: str
    options: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """The option's raw value, or None."""
        return dict(self.options).get(key)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.options)


@dataclass(frozen=True)
class _Run:
    seed: int
    start: int
    end: int | None
    pack: CityPack
    params: SimParams


_Compiler = Callable[[ScenarioSpec, _Run], Effects]


@dataclass(frozen=True)
class _Scenario:
    compile: _Compiler
    options: frozenset[str]
    help: str


def parse_scenario(text: str) -> ScenarioSpec:
    """`name` or `name:key=value,...`; ScenarioError names what is wrong."""
    name, _, rest = text.strip().partition(":")
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    options: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not value:
            raise ScenarioError(f"scenario option {part!r} must be key=value")
        if key not in SCENARIOS[name].options:
            allowed = ", ".join(sorted(SCENARIOS[name].options))
            raise ScenarioError(f"{name} has no option {key!r} (options: {allowed})")
        options.append((key, value))
    spec = ScenarioSpec(name, tuple(options))
    _check_values(spec)
    return spec


# Allowed ranges of the numeric options, per scenario.
_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "pollution_episode": {"hours": (0.01, 8760.0), "factor": (1.0, 30.0)},
    "counter_outage": {"hours": (0.01, 8760.0)},
    "tet_rush": {"days": (0.5, 60.0), "factor": (1.0, 10.0), "holiday_days": (0.0, 30.0)},
    "sensor_faults": {"hours": (0.01, 8760.0)},
    "poison": {},
}


def _check_values(spec: ScenarioSpec) -> None:
    """Option values that need no city pack are checked as soon as they are parsed."""
    for key, _ in spec.options:
        if key in ("after", "every"):
            _seconds(spec, key, "0s")
        elif key == "at":
            _at(spec)
        elif key in _RANGES[spec.name]:
            _float(spec, key, 0.0)


def compile_effects(
    specs: tuple[ScenarioSpec, ...],
    *,
    seed: int,
    start: int,
    end: int | None,
    pack: CityPack,
    params: SimParams,
) -> Effects:
    """The combined effects of the scenarios on one run."""
    run = _Run(seed, start, end, pack, params)
    effects = Effects()
    for spec in specs:
        effects = effects.merged(SCENARIOS[spec.name].compile(spec, run))
    return effects


def poison_items(ctx: SimContext) -> Iterator[Item]:
    """Batches of malformed messages at the scheduled moments, in time order."""
    heap = list(ctx.effects.poison)
    heapq.heapify(heap)
    batch = 0
    while heap:
        t, every = heapq.heappop(heap)
        if ctx.end is not None and t >= ctx.end:
            break
        if t >= ctx.start:
            yield from _batch(ctx, t, batch)
            batch += 1
        if every:
            heapq.heappush(heap, (t + every, every))


def _batch(ctx: SimContext, t: int, batch: int) -> Iterator[Item]:
    seed = derive_seed(ctx.seed, "poison", str(batch)) % (2**31)
    for msg in poison_messages(seed, to_datetime(t), ctx.pack):
        yield (t, POISON_INDEX, msg.topic, msg.key, msg.value, None)


# -- option helpers -------------------------------------------------------------------------
def _seconds(spec: ScenarioSpec, key: str, default: str) -> int:
    raw = spec.get(key) or default
    try:
        return int(parse_duration(raw).total_seconds())
    except ValueError as exc:
        raise ScenarioError(f"{spec.name}: {key}: {exc}") from None


def _float(spec: ScenarioSpec, key: str, default: float) -> float:
    raw = spec.get(key)
    if raw is None:
        return default
    low, high = _RANGES[spec.name][key]
    try:
        value = float(raw)
    except ValueError:
        raise ScenarioError(f"{spec.name}: {key}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ScenarioError(f"{spec.name}: {key}={raw} is outside {low:g}..{high:g}")
    return value


def _begin(spec: ScenarioSpec, run: _Run, default_after: str) -> int:
    """The window start: `at` (ISO time with offset) or `after` (a duration after the start)."""
    at = _at(spec)
    if at is not None:
        return at
    return run.start + _seconds(spec, "after", default_after)


def _at(spec: ScenarioSpec) -> int | None:
    at = spec.get("at")
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise ScenarioError(f"{spec.name}: at={at!r} is not an ISO date-time") from None
    if moment.tzinfo is None:
        raise ScenarioError(f"{spec.name}: at={at!r} needs a UTC offset such as +07:00")
    return int(moment.timestamp())


def _wards(spec: ScenarioSpec, run: _Run, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = spec.get("wards")
    if raw is None:
        return default
    codes = tuple(c.strip() for c in raw.split("+") if c.strip())
    unknown = [c for c in codes if c not in run.pack]
    if unknown or not codes:
        raise ScenarioError(f"{spec.name}: unknown ward(s) {', '.join(unknown) or raw!r}")
    return codes


def _most_populous(run: _Run, n: int) -> tuple[str, ...]:
    ranked = sorted(run.pack.wards, key=lambda w: (-w.population, w.code))
    return tuple(w.code for w in ranked[:n])


# -- the scenarios --------------------------------------------------------------------------
def _pollution_episode(spec: ScenarioSpec, run: _Run) -> Effects:
    begin = _begin(spec, run, "30m")
    length = _hours(spec, 12.0)
    factor = _float(spec, "factor", 6.0)
    wards = frozenset(_wards(spec, run, _most_populous(run, 3)))
    return Effects(pollution=((wards, Window(begin, begin + length, factor)),))


def _hours(spec: ScenarioSpec, default: float) -> int:
    return int(_float(spec, "hours", default) * 3600)


def _counter_outage(spec: ScenarioSpec, run: _Run) -> Effects:
    begin = _begin(spec, run, "1h")
    length = _hours(spec, 72.0)
    wards = _wards(spec, run, _most_populous(run, 1))
    return Effects(counter_outages=tuple((w, Window(begin, begin + length)) for w in wards))


def _tet_rush(spec: ScenarioSpec, run: _Run) -> Effects:
    days = _float(spec, "days", 7.0)
    rush = int(days * DAY)
    begin: int | None = None
    if spec.get("at") is None and spec.get("after") is None:
        # Without an explicit time, the rush runs up to the next Tết within 45 days, if any.
        for first in run.params.tet_starts:
            tet = day_start(day_number(date.fromisoformat(first)))
            if run.start <= tet <= run.start + 45 * DAY:
                begin = max(run.start, tet - rush)
                break
    if begin is None:
        begin = _begin(spec, run, "0s")
    end = begin + rush
    factor = _float(spec, "factor", 1.8)
    holiday = int(_float(spec, "holiday_days", 0.0))
    first_closed = local_day(end - 1) + 1
    return Effects(
        closed_days=tuple(range(first_closed, first_closed + holiday)),
        dossier_rate=(Window(begin, end, factor),),
        payment_rate=(Window(begin, end, 1.0 + (factor - 1.0) * 1.3),),
        feedback_rate=(Window(begin, end, 1.0 + (factor - 1.0) * 0.5),),
    )


def _sensor_faults(spec: ScenarioSpec, run: _Run) -> Effects:
    begin = _begin(spec, run, "15m")
    length = _hours(spec, 24.0)
    network = stations(run.pack, run.params)
    known = {s.id for s in network}
    raw = spec.get("stations")
    if raw is not None:
        chosen = [s.strip() for s in raw.split("+") if s.strip()]
        unknown = [s for s in chosen if s not in known]
        if unknown or not chosen:
            raise ScenarioError(f"sensor_faults: unknown station(s) {', '.join(unknown) or raw}")
    else:
        rng = stream(run.seed, "scenario", "sensor_faults")
        chosen = rng.sample(sorted(known), min(3, len(known)))
    modes: tuple[str, ...] = ("stuck", "negative", "missing")
    mode_opt = spec.get("modes")
    if mode_opt is not None:
        modes_given = tuple(m.strip() for m in mode_opt.split("+") if m.strip())
        if not modes_given or set(modes_given) - set(modes):
            raise ScenarioError(f"sensor_faults: modes must be from {'+'.join(modes)}")
        modes = modes_given
    window = Window(begin, begin + length)
    return Effects(
        sensor_faults=tuple((sid, modes[i % len(modes)], window) for i, sid in enumerate(chosen))
    )


def _poison(spec: ScenarioSpec, run: _Run) -> Effects:
    first = _begin(spec, run, "5m")
    every = _seconds(spec, "every", "0s") or None
    return Effects(poison=((first, every),))


SCENARIOS: dict[str, _Scenario] = {
    "pollution_episode": _Scenario(
        _pollution_episode,
        frozenset({"wards", "at", "after", "hours", "factor"}),
        "PM peaks (x factor) in chosen wards over a time window",
    ),
    "counter_outage": _Scenario(
        _counter_outage,
        frozenset({"wards", "at", "after", "hours"}),
        "a one-stop counter stops: backlog and overdue dossiers build up",
    ),
    "tet_rush": _Scenario(
        _tet_rush,
        frozenset({"at", "after", "days", "factor", "holiday_days"}),
        "holiday rush of dossiers and payments before Tết, optional closure after",
    ),
    "sensor_faults": _Scenario(
        _sensor_faults,
        frozenset({"stations", "modes", "at", "after", "hours"}),
        "stuck, negative (invalid) and missing air-quality readings",
    ),
    "poison": _Scenario(
        _poison,
        frozenset({"at", "after", "every"}),
        "malformed messages of every rejected kind",
    ),
}
