"""Simulators over a simulated week at default parameters: the statistics the design promises."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

import msgspec
import pytest
from scipy.stats import spearmanr

from ioc.core.citypack import CityPack, load_pack
from ioc.core.contracts import (
    VN_TZ,
    AirQualityEvent,
    DossierEvent,
    PaymentEvent,
    dossier_outcome,
)
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from simulators.timebase import local_day, second_of_day, weekday_of_day

WEEK_START = datetime(2025, 3, 3, tzinfo=VN_TZ)  # Monday; no public holiday that week
DEFAULTS = SimParams()


@dataclass
class Week:
    """What the tests need from one simulated week, gathered in a single pass."""

    by_feed_ward: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    dossiers: list[DossierEvent] = field(default_factory=list)
    pm25: dict[str, list[tuple[int, float | None]]] = field(default_factory=dict)
    no2: dict[str, list[tuple[int, float | None]]] = field(default_factory=dict)
    public_payments: list[PaymentEvent] = field(default_factory=list)
    retail_hours: Counter[int] = field(default_factory=Counter)


def _collect(config: SimConfig, pack: CityPack) -> Week:
    week = Week()
    feed_of = {
        "ioc.dossiers.v1": "dossiers",
        "ioc.payments.v1": "payments",
        "ioc.feedback.v1": "feedback",
        "ioc.air_quality.v1": "air_quality",
    }
    for t, _, topic, _, value, ward in generate(config, pack):
        feed = feed_of[topic]
        assert ward is not None
        week.by_feed_ward[feed][ward] += 1
        if feed == "dossiers":
            week.dossiers.append(msgspec.json.decode(value, type=DossierEvent))
        elif feed == "air_quality":
            ev = msgspec.json.decode(value, type=AirQualityEvent)
            week.pm25.setdefault(ev.station_id, []).append((t, ev.pm25))
            week.no2.setdefault(ev.station_id, []).append((t, ev.no2))
        elif b'"merchant_type":"public_service_fee"' in value or b'"merchant_type":"tax"' in value:
            week.public_payments.append(msgspec.json.decode(value, type=PaymentEvent))
        elif b'"merchant_type":"shop"' in value or b'"merchant_type":"market_stall"' in value:
            week.retail_hours[second_of_day(t) // 3600] += 1
    return week


@pytest.fixture(scope="module")
def pack() -> CityPack:
    return load_pack("halong")


@pytest.fixture(scope="module")
def week(pack: CityPack) -> Week:
    config = SimConfig(start=WEEK_START, duration=timedelta(days=7), seed=2025)
    return _collect(config, pack)


def test_volumes_follow_ward_population(pack: CityPack, week: Week) -> None:
    population = {w.code: w.population for w in pack.wards}
    codes = sorted(population)
    for feed in ("dossiers", "payments", "feedback"):
        counts = week.by_feed_ward[feed]
        rho = spearmanr([population[c] for c in codes], [counts.get(c, 0) for c in codes])[0]
        assert rho > 0.8, (feed, rho)
    total = Counter[str]()
    for counts in week.by_feed_ward.values():
        total.update(counts)
    rho = spearmanr([population[c] for c in codes], [total.get(c, 0) for c in codes])[0]
    assert rho > 0.8
    # Plausible absolute volumes for ~300k people: per week.
    assert 20_000 < sum(week.by_feed_ward["dossiers"].values()) < 40_000
    assert 400_000 < sum(week.by_feed_ward["payments"].values()) < 1_500_000
    assert 1_500 < sum(week.by_feed_ward["feedback"].values()) < 8_000


def test_air_quality_stations_cover_most_wards_but_not_all(pack: CityPack, week: Week) -> None:
    covered = set(week.by_feed_ward["air_quality"])
    assert 15 <= len(covered) < len(pack.wards)
    per_station = {len(v) for v in week.pm25.values()}
    assert per_station == {7 * 96}  # one reading per 15 minutes, none lost


def test_dossiers_are_received_in_office_hours_and_not_on_sunday(week: Week) -> None:
    received = [d for d in week.dossiers if d.kind == "received"]
    by_hour = Counter(d.event_time.hour + d.event_time.minute / 60 for d in received)
    hours = Counter(int(h) for h in by_hour.elements())
    peak = max(hours, key=lambda h: hours[h])
    assert 8 <= peak <= 10
    in_office = sum(
        1
        for d in received
        if (7.5 <= (h := d.event_time.hour + d.event_time.minute / 60) < 11.5) or 13.5 <= h < 17
    )
    assert in_office == len(received)
    all_by_day = Counter(local_day(int(d.event_time.timestamp())) for d in week.dossiers)
    weekday_mean = sum(
        n for day, n in all_by_day.items() if weekday_of_day(day) < 5
    ) / 5  # fmt: skip
    sunday = sum(n for day, n in all_by_day.items() if weekday_of_day(day) == 6)
    saturday = sum(n for day, n in all_by_day.items() if weekday_of_day(day) == 5)
    assert sunday <= 0.01 * weekday_mean
    assert 0.03 * weekday_mean < saturday < 0.4 * weekday_mean


def test_late_share_of_resolved_dossiers_matches_the_parameter(week: Week) -> None:
    resolved = [d for d in week.dossiers if d.kind == "resolved"]
    assert len(resolved) > 5_000
    late = sum(dossier_outcome(d.event_time, d.due_at) == "late" for d in resolved)
    assert abs(late / len(resolved) - DEFAULTS.dossier_late_share) <= 0.03
    early = sum(dossier_outcome(d.event_time, d.due_at) == "early" for d in resolved)
    assert early / len(resolved) > 0.5  # most procedures finish before their due day


def test_late_share_follows_a_different_setting(pack: CityPack) -> None:
    params = replace(DEFAULTS, dossier_late_share=0.25, volume_scale=0.5)
    config = SimConfig(
        start=WEEK_START, duration=timedelta(days=7), seed=3, feeds=("dossiers",), params=params
    )
    resolved = [
        d
        for d in (msgspec.json.decode(i[4], type=DossierEvent) for i in generate(config, pack))
        if d.kind == "resolved"
    ]
    late = sum(dossier_outcome(d.event_time, d.due_at) == "late" for d in resolved)
    assert abs(late / len(resolved) - 0.25) <= 0.03


def test_online_share_is_within_the_plausible_band(week: Week) -> None:
    received = [d for d in week.dossiers if d.kind == "received"]
    online = sum(d.channel == "online" for d in received) / len(received)
    assert 0.5 <= online <= 0.9


def _autocorrelation(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    num = sum((a - m) * (b - m) for a, b in pairwise(xs))
    den = sum((a - m) ** 2 for a in xs)
    return num / den


def _hourly(series: list[tuple[int, float | None]]) -> list[float]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in series:
        if v is not None:
            buckets[(t - 1) // 3600].append(v)
    return [sum(v) / len(v) for _, v in sorted(buckets.items())]


def test_pm25_persists_from_hour_to_hour(week: Week) -> None:
    acs = [_autocorrelation(_hourly(s)) for s in week.pm25.values()]
    assert min(acs) > 0.7
    values = [v for s in week.pm25.values() for _, v in s if v is not None]
    # March in Hạ Long: a few tens of µg/m³, not single digits, not hundreds.
    assert 15 < median(values) < 80


def test_no2_peaks_at_rush_hour(week: Week) -> None:
    rush: list[float] = []
    night: list[float] = []
    for series in week.no2.values():
        for t, v in series:
            if v is None or weekday_of_day(local_day(t - 1)) >= 5:
                continue
            hour = second_of_day(t - 1) // 3600
            if hour in (7, 8, 17, 18):
                rush.append(v)
            elif hour in (2, 3):
                night.append(v)
    assert sum(rush) / len(rush) > 1.4 * sum(night) / len(night)


def test_retail_payments_peak_in_the_evening_market(week: Week) -> None:
    peak = max(week.retail_hours, key=lambda h: week.retail_hours[h])
    assert 17 <= peak <= 20
    assert week.retail_hours[18] > 5 * week.retail_hours[3]


def test_cashless_share_at_public_counters_rises_over_time(pack: CityPack, week: Week) -> None:
    def share(payments: list[PaymentEvent]) -> float:
        return sum(p.channel != "cash" for p in payments) / len(payments)

    later = SimConfig(
        start=datetime(2027, 3, 1, tzinfo=VN_TZ),
        duration=timedelta(days=7),
        seed=2025,
        feeds=("payments",),
        params=replace(DEFAULTS, volume_scale=0.1),
    )
    public_later = [
        p
        for p in (msgspec.json.decode(i[4], type=PaymentEvent) for i in generate(later, pack))
        if p.merchant_type in ("public_service_fee", "tax")
    ]
    now_share = share(week.public_payments)
    assert 0.45 < now_share < 0.8
    assert len(public_later) > 200
    assert share(public_later) > now_share + 0.1
