"""Query step of the wall view: its KPIs now (or as of T) and a day before, feed health, alerts."""

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
from ioc.core.queries.alerts import Alert, read_alerts
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import HOUR, Window, floor_hour
from ioc.core.targets import DashboardConfig

DAY: Final = timedelta(days=1)


@dataclass(frozen=True)
class WallSnapshot:
    """What the wall view shows, as read at `now`."""

    now: datetime
    kpis: pd.DataFrame  # index: wards + "city"; one column per KPI of the four feeds
    yesterday: pd.DataFrame  # the same at the same time yesterday (window KPIs and AQI)
    health: tuple[FeedHealth, ...]
    alerts: tuple[Alert, ...]  # active at `now`, most severe first, acknowledged ones marked
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
    config: DashboardConfig,
) -> WallSnapshot:
    """The wall as of an earlier time T: KPIs at T and at T - 1 day, alerts from the dead
    letters and acknowledgements up to T. Feed health is left out (and so are stalled-feed
    alerts): feed_health keeps only the latest state, so how late each feed was at T is not
    known (the wall says so instead of guessing)."""
    kpis = all_kpis_as_of(conn, wards, as_of)
    yesterday = all_kpis_as_of(conn, wards, as_of - DAY)
    alerts = read_alerts(conn, kpis, (), as_of, config, as_of=True)
    return WallSnapshot(as_of, kpis, yesterday, (), alerts, live=False)


def wall_snapshot(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    now: datetime,
    config: DashboardConfig,
    *,
    yesterday: pd.DataFrame | None = None,
    air_quality: pd.DataFrame | None = None,
) -> WallSnapshot:
    """Everything the wall needs, its alerts evaluated by `config`'s thresholds; `yesterday`
    and `air_quality` may be passed in when the caller has them cached (see
    air_quality_fingerprint)."""
    kpis = all_kpis(conn, wards, now, air_quality)
    if yesterday is None:
        yesterday = all_kpis(conn, wards, now - DAY)
    health = tuple(read_health(conn))
    alerts = read_alerts(conn, kpis, health, now, config)
    return WallSnapshot(now, kpis, yesterday, health, alerts)
