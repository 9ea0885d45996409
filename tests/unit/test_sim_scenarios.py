"""Scenarios: each bends the simulated city the way its name says, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import msgspec
import pytest

from ioc.core.citypack import CityPack, load_pack
from ioc.core.contracts import VN_TZ, AirQualityEvent, DossierEvent
from simulators.engine import SimConfig, generate, make_context
from simulators.params import SimParams
from simulators.scenarios import ScenarioError, parse_scenario
from simulators.timebase import local_day, weekday_of_day

MONDAY = datetime(2025, 3, 3, tzinfo=VN_TZ)
PARAMS = SimParams(warmup_days=40)


@pytest.fixture(scope="module")
def pack() -> CityPack:
    return load_pack("halong")


def _config(
    feeds: tuple[str, ...], days: float, *scenarios: str, params: SimParams = PARAMS
) -> SimConfig:
    return SimConfig(
        start=MONDAY,
        duration=timedelta(days=days),
        seed=4,
        feeds=feeds,
        scenarios=tuple(parse_scenario(s) for s in scenarios),
        params=params,
    )


def _dossiers(config: SimConfig, pack: CityPack) -> list[DossierEvent]:
    return [msgspec.json.decode(i[4], type=DossierEvent) for i in generate(config, pack)]


def _overdue_open(events: list[DossierEvent], ward: str, at: datetime) -> int:
    closed = {
        e.dossier_id
        for e in events
        # A 'returned' event alone means the case was resolved before the run began.
        if e.kind in ("resolved", "returned", "withdrawn", "rejected") and e.event_time <= at
    }
    return len(
        {
            e.dossier_id
            for e in events
            if e.ward_code == ward
            and e.event_time <= at
            and e.due_at < at
            and e.dossier_id not in closed
        }
    )


def test_counter_outage_builds_a_backlog_of_overdue_dossiers(pack: CityPack) -> None:
    ward = "06673"  # the most populous ward: the default target
    outage = "counter_outage:after=7h,hours=72"
    base = _dossiers(_config(("dossiers",), 6), pack)
    hit = _dossiers(_config(("dossiers",), 6, outage), pack)
    window_end = MONDAY + timedelta(hours=7 + 72)
    assert _overdue_open(hit, ward, window_end) > 5 * max(_overdue_open(base, ward, window_end), 4)
    # Nobody is served at the closed counter, nothing is resolved there during the outage...
    during = [
        e
        for e in hit
        if e.ward_code == ward and MONDAY + timedelta(hours=7) <= e.event_time < window_end
    ]
    assert not [e for e in during if e.kind == "received" and e.channel == "counter"]
    assert not [e for e in during if e.kind in ("resolved", "returned", "processing")]
    # ...while other wards work as usual, and the backlog clears after it reopens.
    other = [
        e
        for e in hit
        if e.ward_code != ward
        and e.kind == "resolved"
        and MONDAY + timedelta(hours=7) <= e.event_time < window_end
    ]
    assert len(other) > 500
    after = [e for e in hit if e.ward_code == ward and e.event_time >= window_end]
    assert sum(e.kind == "resolved" for e in after) > 50


def test_pollution_episode_multiplies_pm_in_chosen_wards_only(pack: CityPack) -> None:
    scenario = "pollution_episode:wards=06688+06697,after=4h,hours=8,factor=6"
    base = list(generate(_config(("air_quality",), 1), pack))
    hit = list(generate(_config(("air_quality",), 1, scenario), pack))
    assert len(base) == len(hit)
    plateau_from = MONDAY + timedelta(hours=4 + 2)
    plateau_to = MONDAY + timedelta(hours=4 + 6)
    ratios: list[float] = []
    for b, h in zip(base, hit, strict=True):
        eb = msgspec.json.decode(b[4], type=AirQualityEvent)
        eh = msgspec.json.decode(h[4], type=AirQualityEvent)
        assert (eb.station_id, eb.event_time) == (eh.station_id, eh.event_time)
        if eb.ward_code not in ("06688", "06697"):
            assert (eb.pm25, eb.pm10, eb.no2) == (eh.pm25, eh.pm10, eh.no2)
        elif plateau_from < eb.event_time <= plateau_to and eb.pm25 and eh.pm25:
            ratios.append(eh.pm25 / eb.pm25)
    assert len(ratios) >= 40
    assert all(5.5 < r < 6.5 for r in ratios)


def test_tet_rush_raises_volumes_then_closes_offices(pack: CityPack) -> None:
    small = replace(PARAMS, volume_scale=0.3)
    scenario = "tet_rush:after=0s,days=3,factor=2,holiday_days=2"

    def count(feed: str, days: int, *scenarios: str) -> int:
        items = generate(_config((feed,), days, *scenarios, params=small), pack)
        if feed == "payments":
            return sum(1 for _ in items)
        return sum(b'"kind":"received"' in i[4] for i in items)

    assert 1.7 < count("dossiers", 3, scenario) / count("dossiers", 3) < 2.3
    assert 1.9 < count("payments", 3, scenario) / count("payments", 3) < 2.4
    hit = _dossiers(_config(("dossiers",), 5, scenario, params=small), pack)
    closed_days = {local_day(int((MONDAY + timedelta(days=d)).timestamp())) for d in (3, 4)}
    assert all(weekday_of_day(d) < 5 for d in closed_days)
    on_closed = [e for e in hit if local_day(int(e.event_time.timestamp())) in closed_days]
    assert on_closed == []
    assert [e for e in hit if e.event_time >= MONDAY + timedelta(days=3)] == []


def test_tet_rush_defaults_to_the_days_before_tet(pack: CityPack) -> None:
    config = replace(
        _config(("dossiers",), 30, "tet_rush"), start=datetime(2026, 1, 20, tzinfo=VN_TZ)
    )
    ctx = make_context(config, pack)
    (window,) = ctx.effects.dossier_rate
    tet = datetime(2026, 2, 14, tzinfo=VN_TZ)
    assert window.end == int(tet.timestamp())
    assert window.start == int((tet - timedelta(days=7)).timestamp())


def test_scenarios_compose(pack: CityPack) -> None:
    config = _config(
        ("air_quality",), 1, "sensor_faults", "pollution_episode", "poison", "counter_outage"
    )
    effects = make_context(config, pack).effects
    assert len(effects.sensor_faults) == 3
    assert {m for _, m, _ in effects.sensor_faults} == {"stuck", "negative", "missing"}
    assert len(effects.pollution) == 1 and len(effects.counter_outages) == 1
    assert effects.poison == ((config.start_s + 300, None),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope", "unknown scenario 'nope'"),
        ("poison:every", "must be key=value"),
        ("poison:colour=red", "has no option 'colour'"),
        ("pollution_episode:factor=abc", "not a number"),
        ("pollution_episode:factor=99", "outside"),
        ("counter_outage:at=2025-03-03T08:00", "needs a UTC offset"),
        ("counter_outage:after=soon", "bad duration"),
    ],
)
def test_bad_scenarios_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as info:
        parse_scenario(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pollution_episode:wards=99999", "unknown ward"),
        ("sensor_faults:stations=AQ-nope", "unknown station"),
        ("sensor_faults:modes=melted", "modes must be"),
    ],
)
def test_bad_scenario_values_fail_when_compiled(pack: CityPack, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        make_context(_config(("air_quality",), 1, text), pack)
