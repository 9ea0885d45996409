"""Query step of the ward page: hourly (or daily) time series per feed for one ward, from the
hourly rollup tables (primary keys lead with ward_code, so cost follows the window only)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.aqi import NOWCAST_HOURS
from ioc.core.queries.air_quality import POLLUTANTS, station_hour_aqi
from ioc.core.queries.window import HOUR, Window

DOSSIERS: Final = """
SELECT bucket, received, resolved FROM dossier_stats_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket < %(end)s
"""
PAYMENTS: Final = """
SELECT bucket, transactions, amount_vnd FROM payment_stats_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket < %(end)s
"""
FEEDBACK: Final = """
SELECT bucket, submitted, resolved FROM feedback_stats_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket < %(end)s
"""
AIR_QUALITY: Final = """
SELECT station_id, bucket,
       pm25_sum / nullif(pm25_n, 0), pm10_sum / nullif(pm10_n, 0), no2_sum / nullif(no2_n, 0),
       o3_sum / nullif(o3_n, 0), so2_sum / nullif(so2_n, 0), co_sum / nullif(co_n, 0)
FROM air_quality_station_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket < %(end)s
"""
COLUMNS: Final = {
    "dossiers": ("received", "resolved"),
    "payments": ("transactions", "amount_vnd"),
    "feedback": ("submitted", "resolved"),
    "air_quality": ("aqi",),
}


def hours_of(window: Window) -> pd.DatetimeIndex:
    """Every hour bucket of the window (so that hours without events show as 0)."""
    n = int((window.end - window.start) / HOUR)
    return pd.DatetimeIndex([window.start + i * HOUR for i in range(n)], name="bucket")


def _counts(
    conn: psycopg.Connection[Any], query: str, ward: str, window: Window, columns: tuple[str, ...]
) -> pd.DataFrame:
    rows = conn.execute(query, {"ward": ward, "start": window.start, "end": window.end}).fetchall()
    frame = pd.DataFrame(rows, columns=["bucket", *columns])
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    index = hours_of(window).tz_convert("UTC")
    return frame.set_index("bucket").reindex(index, fill_value=0).astype(float)


def aqi_hours(rows: list[tuple[Any, ...]], window: Window) -> pd.DataFrame:
    """Hourly VN_AQI of the ward's worst station for each hour of the window (NaN = none)."""
    by_station: dict[str, dict[datetime, dict[str, float | None]]] = defaultdict(dict)
    for station, bucket, *values in rows:
        by_station[str(station)][bucket] = dict(zip(POLLUTANTS, values, strict=True))
    index = hours_of(window)
    worst: list[float] = []
    for hour in index:
        h = hour.to_pydatetime()
        best = float("nan")
        for means in by_station.values():
            value, _pm = station_hour_aqi(means, h)
            if value is not None and not (best >= value):
                best = float(value)
        worst.append(best)
    return pd.DataFrame({"aqi": worst}, index=index.tz_convert("UTC"))


def ward_series(
    conn: psycopg.Connection[Any], ward: str, window: Window
) -> dict[str, pd.DataFrame]:
    """Feed -> hourly frame (index: bucket, UTC) of the ward's counts, and its hourly AQI."""
    reach = Window(window.start - (NOWCAST_HOURS - 1) * HOUR, window.end)
    aq_rows = conn.execute(
        AIR_QUALITY, {"ward": ward, "start": reach.start, "end": reach.end}
    ).fetchall()
    return {
        "dossiers": _counts(conn, DOSSIERS, ward, window, COLUMNS["dossiers"]),
        "payments": _counts(conn, PAYMENTS, ward, window, COLUMNS["payments"]),
        "feedback": _counts(conn, FEEDBACK, ward, window, COLUMNS["feedback"]),
        "air_quality": aqi_hours(aq_rows, window),
    }


def daily(series: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Hourly series summed per local day (AQI: the day's worst hour)."""
    out: dict[str, pd.DataFrame] = {}
    for feed, frame in series.items():
        local = frame.tz_convert("Asia/Ho_Chi_Minh")
        grouped = local.groupby(pd.DatetimeIndex(local.index).floor("D"))
        out[feed] = grouped.max() if feed == "air_quality" else grouped.sum()
    return out
