"""Query step of the ward page: breakdowns of one ward's window (dossiers by field and channel,
payments by channel, feedback by category, AQI by pollutant) and its overdue case lists.

Cost: the case-table breakdowns use (ward_code, received_at/submitted_at) indexes and the
payment one the hourly channel rollup, so each reads only the ward's rows inside the window -
flat in the history, linear in the window. Overdue lists read the partial indexes on open
cases, limited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.aqi import NOWCAST_HOURS, hourly_aqi
from ioc.core.queries.air_quality import POLLUTANTS
from ioc.core.queries.window import HOUR, Window, floor_hour

LIST_LIMIT: Final = 200

DOSSIERS_BY_FIELD_CHANNEL: Final = """
SELECT procedure_field, channel, count(*) FROM dossiers
WHERE ward_code = %(ward)s AND received_at >= %(start)s AND received_at < %(end)s
GROUP BY procedure_field, channel
"""
PAYMENTS_BY_CHANNEL: Final = """
SELECT channel, sum(transactions), sum(amount_vnd) FROM payment_channel_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY channel
"""
FEEDBACK_BY_CATEGORY: Final = """
SELECT category, count(*) FROM feedback_reports
WHERE ward_code = %(ward)s AND submitted_at >= %(start)s AND submitted_at < %(end)s
GROUP BY category
"""
STATION_HOURS: Final = """
SELECT station_id, bucket,
       pm25_sum / nullif(pm25_n, 0), pm10_sum / nullif(pm10_n, 0), no2_sum / nullif(no2_n, 0),
       o3_sum / nullif(o3_n, 0), so2_sum / nullif(so2_n, 0), co_sum / nullif(co_n, 0)
FROM air_quality_station_hourly
WHERE ward_code = %(ward)s AND bucket >= %(start)s AND bucket <= %(hour)s
"""
OVERDUE_DOSSIERS: Final = """
SELECT dossier_id, procedure_field, channel, received_at, due_at, status FROM dossiers
WHERE is_open AND ward_code = %(ward)s AND due_at < %(now)s
ORDER BY due_at, dossier_id LIMIT %(limit)s
"""
OVERDUE_FEEDBACK: Final = """
SELECT report_id, category, urgency, channel, submitted_at, due_at, status FROM feedback_reports
WHERE is_open AND ward_code = %(ward)s AND due_at < %(now)s
ORDER BY due_at, report_id LIMIT %(limit)s
"""
# Time travel: open at T (first seen by T, not closed by T) and past due at T, as the KPIs'
# OPEN_AS_OF conditions; `status` is the case's state now, which the lists do not show.
OVERDUE_DOSSIERS_AS_OF: Final = """
SELECT dossier_id, procedure_field, channel, received_at, due_at, status FROM dossiers
WHERE ward_code = %(ward)s AND coalesce(closed_at, 'infinity'::timestamptz) > %(now)s
  AND coalesce(first_event_at, received_at) <= %(now)s AND due_at < %(now)s
ORDER BY due_at, dossier_id LIMIT %(limit)s
"""
OVERDUE_FEEDBACK_AS_OF: Final = """
SELECT report_id, category, urgency, channel, submitted_at, due_at, status FROM feedback_reports
WHERE ward_code = %(ward)s AND coalesce(closed_at, 'infinity'::timestamptz) > %(now)s
  AND coalesce(first_event_at, submitted_at) <= %(now)s AND due_at < %(now)s
ORDER BY due_at, report_id LIMIT %(limit)s
"""


def _span(ward: str, window: Window) -> dict[str, Any]:
    return {"ward": ward, "start": window.start, "end": window.end}


def dossiers_by_field_channel(
    conn: psycopg.Connection[Any], ward: str, window: Window
) -> pd.DataFrame:
    """Dossiers received in the window: rows procedure_field, columns channel, counts."""
    rows = conn.execute(DOSSIERS_BY_FIELD_CHANNEL, _span(ward, window)).fetchall()
    frame = pd.DataFrame(rows, columns=["procedure_field", "channel", "count"])
    return frame.sort_values(["procedure_field", "channel"], ignore_index=True)


def payments_by_channel(conn: psycopg.Connection[Any], ward: str, window: Window) -> pd.DataFrame:
    """Successful payments in the window by channel: count and amount (VND)."""
    rows = conn.execute(PAYMENTS_BY_CHANNEL, _span(ward, window)).fetchall()
    frame = pd.DataFrame(rows, columns=["channel", "count", "amount_vnd"])
    return frame.sort_values("count", ascending=False, ignore_index=True)


def feedback_by_category(conn: psycopg.Connection[Any], ward: str, window: Window) -> pd.DataFrame:
    """Feedback reports submitted in the window by category."""
    rows = conn.execute(FEEDBACK_BY_CATEGORY, _span(ward, window)).fetchall()
    frame = pd.DataFrame(rows, columns=["category", "count"])
    return frame.sort_values("count", ascending=False, ignore_index=True)


def aqi_by_pollutant(conn: psycopg.Connection[Any], ward: str, now: datetime) -> pd.DataFrame:
    """Each pollutant's VN_AQI sub-index at now's hour, worst station of the ward."""
    hour = floor_hour(now)
    rows = conn.execute(
        STATION_HOURS,
        {"ward": ward, "start": hour - (NOWCAST_HOURS - 1) * HOUR, "hour": hour},
    ).fetchall()
    by_station: dict[str, dict[datetime, dict[str, float | None]]] = {}
    for station, bucket, *values in rows:
        by_station.setdefault(str(station), {})[bucket] = dict(zip(POLLUTANTS, values, strict=True))
    worst: dict[str, int] = {}
    hours = [hour - i * HOUR for i in range(NOWCAST_HOURS)]
    for means in by_station.values():
        series = {p: [means.get(h, {}).get(p) for h in hours] for p in POLLUTANTS}
        for pollutant, value in hourly_aqi(series).sub_indices.items():
            worst[pollutant] = max(value, worst.get(pollutant, -1))
    return pd.DataFrame(
        [(p, worst[p]) for p in POLLUTANTS if p in worst], columns=["pollutant", "sub_index"]
    )


def overdue_dossiers(
    conn: psycopg.Connection[Any],
    ward: str,
    now: datetime,
    limit: int = LIST_LIMIT,
    *,
    as_of: bool = False,
) -> pd.DataFrame:
    """Open dossiers past due at `now`, most overdue first; as_of: as they were at an earlier
    `now` (time travel) rather than by the current open flag."""
    query = OVERDUE_DOSSIERS_AS_OF if as_of else OVERDUE_DOSSIERS
    rows = conn.execute(query, {"ward": ward, "now": now, "limit": limit}).fetchall()
    return pd.DataFrame(
        rows,
        columns=["dossier_id", "procedure_field", "channel", "received_at", "due_at", "status"],
    )


def overdue_feedback(
    conn: psycopg.Connection[Any],
    ward: str,
    now: datetime,
    limit: int = LIST_LIMIT,
    *,
    as_of: bool = False,
) -> pd.DataFrame:
    """Open feedback reports past their deadline at `now`, most overdue first; as_of: as they
    were at an earlier `now` (time travel)."""
    query = OVERDUE_FEEDBACK_AS_OF if as_of else OVERDUE_FEEDBACK
    rows = conn.execute(query, {"ward": ward, "now": now, "limit": limit}).fetchall()
    return pd.DataFrame(
        rows,
        columns=["report_id", "category", "urgency", "channel", "submitted_at", "due_at", "status"],
    )
