"""Query step of the wall view: every KPI per ward and for the city now and at the same time
yesterday, the feeds' health, recent dead letters and acknowledgements, in one read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.queries.air_quality import air_quality_kpis
from ioc.queries.alerts import recent_acks, recent_dead_letters
from ioc.queries.dossiers import dossier_kpis
from ioc.queries.feedback import feedback_kpis
from ioc.queries.payments import payment_kpis
from ioc.queries.window import Window
from streams.health import FeedHealth, read_health

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


def all_kpis(conn: psycopg.Connection[Any], wards: Sequence[str], now: datetime) -> pd.DataFrame:
    """The four feeds' KPI frames side by side, over today (local midnight to now's hour)."""
    window = Window.today(now)
    frames = [
        dossier_kpis(conn, wards, window, now),
        payment_kpis(conn, wards, window),
        feedback_kpis(conn, wards, window, now),
        air_quality_kpis(conn, wards, now),
    ]
    return pd.concat(frames, axis=1)


def wall_snapshot(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    now: datetime,
    *,
    dead_letter_window_s: float,
    ack_hold_s: float,
    yesterday: pd.DataFrame | None = None,
) -> WallSnapshot:
    """Everything the wall needs; `yesterday` may be passed in when the caller has it cached
    (it changes once an hour, when the window moves)."""
    kpis = all_kpis(conn, wards, now)
    if yesterday is None:
        yesterday = all_kpis(conn, wards, now - DAY)
    health = tuple(read_health(conn))
    dead = recent_dead_letters(conn, now, dead_letter_window_s)
    acks = recent_acks(conn, now, ack_hold_s)
    return WallSnapshot(now, kpis, yesterday, health, dead, acks)
