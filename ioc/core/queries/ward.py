"""Query step of the ward page: one read of everything it shows for one ward and period - the
KPIs beside the city's, time series, breakdowns and overdue case lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.queries import breakdowns, series
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import Window

PERIOD_HOURS: Final = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24}


@dataclass(frozen=True)
class WardDetail:
    """What the ward page shows for `ward` over `window` (series daily for 30 days); live False:
    as it was at `now`, an earlier time (time travel)."""

    ward: str
    window: Window
    now: datetime
    kpis: pd.DataFrame  # the ward's row and the city's, every KPI
    series: dict[str, pd.DataFrame]
    daily: bool
    dossiers_by: pd.DataFrame
    payments_by: pd.DataFrame
    feedback_by: pd.DataFrame
    aqi_by: pd.DataFrame
    overdue_dossiers: pd.DataFrame
    overdue_feedback: pd.DataFrame
    live: bool = True


def ward_detail(
    conn: psycopg.Connection[Any],
    wards: Sequence[str],
    ward: str,
    period: str,
    now: datetime,
    air_quality: pd.DataFrame | None = None,
    *,
    live: bool = True,
) -> WardDetail:
    """The ward page's data; `period` is one of PERIOD_HOURS; `air_quality` is the caller's
    cached air_quality_kpis frame for `now` (see snapshot.air_quality_fingerprint). live False:
    as of `now` in the past - series, breakdowns and window KPIs end at now's hour (completed
    hours only, as on the wall), overdue lists and case KPIs are those open at `now`."""
    hours = PERIOD_HOURS[period]
    window = Window.last(hours, now) if live else Window.last_before(hours, now)
    frames = [
        dossier_kpis(conn, wards, window, now),
        payment_kpis(conn, wards, window),
        feedback_kpis(conn, wards, window, now),
        air_quality if air_quality is not None else air_quality_kpis(conn, wards, now),
    ]
    kpis = pd.concat(frames, axis=1).loc[[ward, "city"]]
    hourly = series.ward_series(conn, ward, window)
    is_daily = period == "30d"
    return WardDetail(
        ward=ward,
        window=window,
        now=now,
        kpis=kpis,
        series=series.daily(hourly) if is_daily else hourly,
        daily=is_daily,
        dossiers_by=breakdowns.dossiers_by_field_channel(conn, ward, window),
        payments_by=breakdowns.payments_by_channel(conn, ward, window),
        feedback_by=breakdowns.feedback_by_category(conn, ward, window),
        aqi_by=breakdowns.aqi_by_pollutant(conn, ward, now),
        overdue_dossiers=breakdowns.overdue_dossiers(conn, ward, now, as_of=not live),
        overdue_feedback=breakdowns.overdue_feedback(conn, ward, now, as_of=not live),
        live=live,
    )
