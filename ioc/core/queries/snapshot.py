"""Query step of the wall view: every KPI per ward and for the city now (or as of an earlier
time T) and at the same time yesterday, the feeds' health, recent dead letters and
acknowledgements, in one read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.aqi import NOWCAST_HOURS
from ioc.core.health import FeedHealth, read_health
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.alerts import recent_acks, recent_dead_letters
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import HOUR, Window, floor_hour

DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class WallSnapshot:
    """What the wall view shows, as read at `now`."""

    now: datetime
    kpis: pd.DataFrame  # index: wards + "city"; one column per KPI of the four feeds
    yesterday: pd.DataFrame  # the same at the same time yesterday (window KPIs and AQI)
    health: tuple[FeedHealth, ...]
    dead_letters_recent: int
    acks: dict[str, datetime]
    live: bool = True  # False: time travel to `now`, with no feed health (only "now" has one)


# What the air-quality KPIs at `now` are computed from: if this has not changed, neither have
# they (stations report every 15 minutes; NowCast over every hour of today is the costly part).
AQ_FINGERPRINT: Final = """
SELECT count(*), coalesce(sum(readings), 0), max(bucket) FROM air_quality_station_hourly
WHERE bucket >= %(start)s AND bucket <= %(hour)s
"""


def air_quality_fingerprint(conn: psycopg.Connection[Any], now: datetime) -> tuple[Any, ...]:
    """A cheap key that changes whenever air_quality_kpis(conn, wards, now) can change."""
    hour = floor_hour(now)
    start = Window.today(now).start - (NOWCAST_HOURS - 1) * HOUR
    row = conn.execute(AQ_FINGERPRINT, {"start": start, "hour": hour}).fetchone()
    return (hour, Window.today(now).start, *(row or ()))


def all_kpis(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    now: datetime,
    air_quality: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The four feeds' KPI frames side by side, over today (local midnight to now's hour);
    `air_quality` is the caller's cached air_quality_kpis frame when its fingerprint held."""
    window = Window.today(now)
    frames = [
        dossier_kpis(conn, wards, window, now),
        payment_kpis(conn, wards, window),
        feedback_kpis(conn, wards, window, now),
        air_quality if air_quality is not None else air_quality_kpis(conn, wards, now),
    ]
    return pd.concat(frames, axis=1)


def all_kpis_as_of(
    conn: psycopg.Connection[Any], wards: Sequence[str], as_of: datetime
) -> pd.DataFrame:
    """The four feeds' KPIs as they were at `as_of`: window KPIs over the day's completed hours
    before it (Window.today_before), case KPIs and air quality at `as_of` itself."""
    window = Window.today_before(as_of)
    frames = [
        dossier_kpis(conn, wards, window, as_of),
        payment_kpis(conn, wards, window),
        feedback_kpis(conn, wards, window, as_of),
        air_quality_kpis(conn, wards, as_of),
    ]
    return pd.concat(frames, axis=1)


def travel_snapshot(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    as_of: datetime,
    *,
    dead_letter_window_s: float,
    ack_hold_s: float,
) -> WallSnapshot:
    """The wall as of an earlier time T: KPIs at T and at T - 1 day, dead letters and
    acknowledgements up to T. Feed health is left out: feed_health keeps only the latest state,
    so how late each feed was at T is not known (the wall says so instead of guessing)."""
    kpis = all_kpis_as_of(conn, wards, as_of)
    yesterday = all_kpis_as_of(conn, wards, as_of - DAY)
    dead = recent_dead_letters(conn, as_of, dead_letter_window_s, as_of=True)
    acks = recent_acks(conn, as_of, ack_hold_s, as_of=True)
    return WallSnapshot(as_of, kpis, yesterday, (), dead, acks, live=False)


def wall_snapshot(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    now: datetime,
    *,
    dead_letter_window_s: float,
    ack_hold_s: float,
    yesterday: pd.DataFrame | None = None,
    air_quality: pd.DataFrame | None = None,
) -> WallSnapshot:
    """Everything the wall needs; `yesterday` and `air_quality` may be passed in when the caller
    has them cached (see air_quality_fingerprint)."""
    kpis = all_kpis(conn, wards, now, air_quality)
    if yesterday is None:
        yesterday = all_kpis(conn, wards, now - DAY)
    health = tuple(read_health(conn))
    dead = recent_dead_letters(conn, now, dead_letter_window_s)
    acks = recent_acks(conn, now, ack_hold_s)
    return WallSnapshot(now, kpis, yesterday, health, dead, acks)
