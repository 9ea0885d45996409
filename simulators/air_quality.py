"""Simulator step of the air-quality feed: 15-minute station readings of six pollutants.

Stations stand in the more populous wards (none in small rural communes). PM2.5 follows a
monthly season, a diurnal cycle (morning and late-evening peaks), a city-wide and a local AR(1)
term in log space (so hours persist), and occasional city-wide episodes; NO2 peaks at rush
hours, O3 in the afternoon sun, SO2 and coarse dust near the coal mines and port.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple

from ioc.core.citypack import CityPack
from ioc.core.contracts import AirQualityEvent, encode_event
from ioc.core.feeds import AIR_QUALITY
from simulators.context import SimContext
from simulators.core import SLOT, SLOTS_PER_DAY, Item, stream
from simulators.params import SimParams
from simulators.timebase import DAY, day_start, local_day, to_datetime, weekday_of_day

FEED: Final = AIR_QUALITY
# Bound once: every emitted item carries both, and `index` searches the registry.
TOPIC: Final = FEED.topic
INDEX: Final = FEED.index

ALL_SIX = ("pm25", "pm10", "no2", "o3", "so2", "co")
LOW_COST = ("pm25", "pm10", "no2", "co")
# A reference station is the first one of a ward this populous; others are low-cost sensors.
REFERENCE_MIN_POPULATION = 15_000


@dataclass(frozen=True)
class Station:
    """A fixed monitoring station; its identity does not depend on the run's seed."""

    id: str
    ward: str
    urban: bool
    industrial: bool
    measures: tuple[str, ...]
    # The station's own level relative to the city (siting near roads, open sea...).
    factor: float


def stations(pack: CityPack, params: SimParams) -> tuple[Station, ...]:
    """The station network of a city pack, ordered by id."""
    roster = stream(0, "air-quality-roster", pack.name)
    out: list[Station] = []
    industrial = frozenset(params.industrial_wards)
    for w in pack.wards:
        if w.population < params.station_min_population:
            continue
        n = min(params.max_stations_per_ward, max(1, w.population // params.residents_per_station))
        for i in range(n):
            reference = i == 0 and w.population >= REFERENCE_MIN_POPULATION
            out.append(
                Station(
                    id=f"AQ-{w.code}-{i + 1}",
                    ward=w.code,
                    urban=w.kind == "phuong",
                    industrial=w.code in industrial,
                    measures=ALL_SIX if reference else LOW_COST,
                    factor=math.exp(roster.gauss(0.0, 0.15)),
                )
            )
    return tuple(sorted(out, key=lambda s: s.id))


def _bump(h: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24-hour circle."""
    d = min(abs(h - centre), 24 - abs(h - centre))
    return math.exp(-(d * d) / (2 * width * width))


def _tables(p: SimParams) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per 15-minute slot: PM log-offset, NO2 rush shape, O3 daylight shape."""
    pm: list[float] = []
    rush: list[float] = []
    sun: list[float] = []
    for s in range(SLOTS_PER_DAY):
        h = (s + 0.5) / 4
        pm.append(_bump(h, 8.0, 1.5) + 1.2 * _bump(h, 21.5, 2.5) - 0.8 * _bump(h, 14.5, 2.5))
        rush.append(_bump(h, 7.75, 1.0) + _bump(h, 17.75, 1.2))
        sun.append(max(0.0, math.sin(math.pi * (h - 7.0) / 12.0)))
    mean = sum(pm) / len(pm)
    pm = [p.pm_diurnal_amplitude * (v - mean) for v in pm]
    return tuple(pm), tuple(rush), tuple(sun)


class _Period(NamedTuple):
    """What the readings of every station share in one period ending at t."""

    t: int
    time: datetime
    log_common: float  # log of the city-wide PM2.5 level, before each station's own terms
    step_l: float  # innovation scale of the stations' local PM terms
    episode: float
    rush: float
    sun: float


class _State:
    """AR(1) states of one station."""

    __slots__ = ("last", "no2", "pm")

    def __init__(self, rng: random.Random, p: SimParams) -> None:
        self.pm = rng.gauss(0.0, p.pm_local_sd)
        self.no2 = rng.gauss(0.0, 0.3)
        self.last: dict[str, float | None] | None = None


class AirQualitySimulator:
    """Generates ioc.air_quality.v1 events for one run."""

    def __init__(self, ctx: SimContext) -> None:
        p = ctx.params
        if not 1 <= p.aq_period_minutes <= 60:
            raise ValueError("aq_period_minutes must be within 1..60")
        self._ctx = ctx
        self._rng = stream(ctx.seed, FEED.name)
        self._episode_rng = stream(ctx.seed, FEED.name, "episodes")
        self.stations = stations(ctx.pack, p)
        self._keys = [s.id.encode() for s in self.stations]
        self._states = [_State(self._rng, p) for _ in self.stations]
        self._regional = self._rng.gauss(0.0, p.pm_regional_sd)
        self._pm_table, self._rush_table, self._sun_table = _tables(p)
        self._episodes: list[tuple[int, int, float]] = []
        self._episode_day = local_day(ctx.start) - 3
        self._faults: dict[str, list[tuple[str, int, int]]] = {}
        for station_id, mode, win in ctx.effects.sensor_faults:
            self._faults.setdefault(station_id, []).append((mode, win.start, win.end))
        self._events = 0
        self._prefix = f"{ctx.tag}-a"
        self._step = p.aq_period_minutes * 60

    def items(self) -> Iterator[Item]:
        """One reading per station per period, ending at event_time, in time order."""
        ctx = self._ctx
        step = self._step
        t = ctx.start + (-ctx.start) % step
        while ctx.end is None or t < ctx.end:
            yield from self._readings(t)
            t += step

    # -- model --------------------------------------------------------------------------
    def _episode_factor(self, t: int) -> float:
        """City-wide stagnation episodes: a trapezoid in log space, drawn a day at a time."""
        p, rng = self._ctx.params, self._episode_rng
        today = local_day(t)
        while self._episode_day < today:
            self._episode_day += 1
            if rng.random() < p.episodes_per_30_days / 30.0:
                begin = day_start(self._episode_day) + int(rng.random() * DAY)
                hours = rng.uniform(*p.episode_hours)
                peak = rng.uniform(*p.episode_peak_factor)
                self._episodes.append((begin, begin + int(hours * 3600), peak))
        self._episodes = [e for e in self._episodes if e[1] > t]
        f = 1.0
        for begin, end, peak in self._episodes:
            if begin <= t < end:
                f *= math.exp(math.log(peak) * _trapezoid((t - begin) / (end - begin)))
        return f

    def _pollution_factor(self, ward: str, t: int) -> float:
        f = 1.0
        for wards, win in self._ctx.effects.pollution:
            if ward in wards and win.start <= t < win.end:
                f *= math.exp(
                    math.log(win.factor) * _trapezoid((t - win.start) / (win.end - win.start))
                )
        return f

    def _readings(self, t: int) -> Iterator[Item]:
        p, rng = self._ctx.params, self._rng
        period = self._period(t)
        for i, st in enumerate(self.stations):
            state = self._states[i]
            values = self._measure(st, state, period)
            if rng.random() < p.aq_missing_share:
                values[st.measures[int(rng.random() * len(st.measures))]] = None
            faults = self._faults.get(st.id)
            if faults:
                faulty = self._apply_faults(faults, t, state, values)
                if faulty is None:
                    continue
                values = faulty
            else:
                state.last = None
            yield (t, INDEX, TOPIC, self._keys[i], self._encode(period, st, values), st.ward)

    def _period(self, t: int) -> _Period:
        """Advances the city-wide state to the period ending at t (one draw of the run stream)."""
        p, gauss = self._ctx.params, self._rng.gauss
        dt = to_datetime(t)
        s = ((t - 1) % DAY + 7 * 3600) % DAY // SLOT  # the slot the period ends in
        weekday = weekday_of_day(local_day(t - 1))
        month = p.pm25_monthly[dt.month - 1]
        step_r = math.sqrt(1 - p.pm_regional_phi**2) * p.pm_regional_sd
        self._regional = p.pm_regional_phi * self._regional + step_r * gauss(0.0, 1.0)
        step_l = math.sqrt(1 - p.pm_local_phi**2) * p.pm_local_sd
        bias = -(p.pm_regional_sd**2 + p.pm_local_sd**2) / 2  # keeps the mean at the base level
        episode = self._episode_factor(t)
        rush = self._rush_table[s] * (1.0 if weekday < 5 else 0.4)
        log_common = math.log(p.pm25_base * month) + self._pm_table[s] + self._regional + bias
        return _Period(t, dt, log_common, step_l, episode, rush, self._sun_table[s])

    def _measure(self, st: Station, state: _State, period: _Period) -> dict[str, float | None]:
        """The station's true reading (None for what it does not measure); advances its state."""
        p, gauss = self._ctx.params, self._rng.gauss
        state.pm = p.pm_local_phi * state.pm + period.step_l * gauss(0.0, 1.0)
        state.no2 = 0.9 * state.no2 + math.sqrt(1 - 0.81) * 0.3 * gauss(0.0, 1.0)
        pm_factor = st.factor * (p.industrial_pm_factor if st.industrial else 1.0)
        pm25 = math.exp(period.log_common + state.pm + gauss(0.0, p.pm_noise_sd)) * pm_factor
        pm25 *= period.episode * self._pollution_factor(st.ward, period.t)
        ratio = 2.3 if st.industrial else 1.6
        pm10 = pm25 * ratio * math.exp(gauss(0.0, 0.1))
        pm10 += (15.0 if st.industrial else 5.0) * math.exp(gauss(0.0, 0.3))
        no2_base = p.no2_urban if st.urban else p.no2_commune
        no2 = no2_base * (1 + (p.no2_rush_factor - 1) * period.rush) * math.exp(state.no2)
        o3 = p.o3_base + p.o3_day_amplitude * period.sun - 0.4 * no2 + gauss(0.0, 5.0)
        so2 = (p.so2_industrial if st.industrial else p.so2_base) * math.exp(gauss(0, 0.35))
        co = p.co_base * (0.6 + 0.4 * no2 / no2_base) * math.exp(gauss(0.0, 0.15))
        # Capped just under the contract's absurd-value limits: extreme but still valid readings.
        values: dict[str, float | None] = {
            "pm25": round(min(pm25, 990.0), 1),
            "pm10": round(min(pm10, 1990.0), 1),
            "no2": round(min(no2, 3900.0), 1),
            "o3": round(min(max(o3, 2.0), 1900.0), 1),
            "so2": round(min(so2, 4900.0), 1),
            "co": round(min(co * math.sqrt(period.episode), 190_000.0), 1),
        }
        for name in ALL_SIX:
            if name not in st.measures:
                values[name] = None
        return values

    def _encode(self, period: _Period, st: Station, values: dict[str, float | None]) -> bytes:
        self._events += 1
        ev = AirQualityEvent(
            event_id=f"{self._prefix}{self._events:09x}",
            event_time=period.time,
            station_id=st.id,
            ward_code=st.ward,
            period_minutes=self._ctx.params.aq_period_minutes,
            pm25=values["pm25"],
            pm10=values["pm10"],
            no2=values["no2"],
            o3=values["o3"],
            so2=values["so2"],
            co=values["co"],
        )
        return encode_event(ev)

    def _apply_faults(
        self,
        faults: list[tuple[str, int, int]],
        t: int,
        state: _State,
        values: dict[str, float | None],
    ) -> dict[str, float | None] | None:
        """The reading a faulty sensor gives (None: it sends nothing)."""
        rng = self._rng
        for mode, begin, end in faults:
            if not begin <= t < end:
                continue
            if mode == "stuck":
                if state.last is None:
                    state.last = dict(values)
                return dict(state.last)
            if mode == "missing":
                if rng.random() < 0.5:
                    return None
                return {**values, "pm25": None, "pm10": None}
            if mode == "negative" and rng.random() < 0.35:
                # Invalid by contract: emitted as the raw bytes a broken sensor would send.
                name = "pm25" if rng.random() < 0.6 else "no2"
                return {**values, name: -round(0.1 + 9.8 * rng.random(), 1)}
        state.last = None
        return values


def _trapezoid(x: float) -> float:
    """0 -> 1 over the first quarter, 1 over the middle half, 1 -> 0 over the last quarter."""
    if x < 0.25:
        return x * 4
    if x > 0.75:
        return max(0.0, (1 - x) * 4)
    return 1.0
