"""Query step of the feedback feed: KPIs per ward and for the city, from rollups and cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.queries.window import CITY, Window, ratio, with_city

COMPONENTS: Final = ("submitted", "resolved", "resolved_in_time", "ratings", "rating_sum")
KPIS: Final = (
    "open_reports",
    "overdue_open",
    "resolved_in_time_rate",
    "median_resolution_hours",
    "satisfaction",
)

SUM_ROLLUP: Final = """
SELECT ward_code, sum(submitted), sum(resolved), sum(resolved_in_time), sum(ratings),
       sum(rating_sum)
FROM feedback_stats_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY ward_code
"""
# Open (and overdue) as of T: first seen by T and not closed by T; the expression index on
# coalesce(closed_at, 'infinity') keeps this to the reports still open at T.
OPEN_AS_OF: Final = """
SELECT ward_code, count(*), count(*) FILTER (WHERE due_at < %(as_of)s)
FROM feedback_reports
WHERE coalesce(closed_at, 'infinity'::timestamptz) > %(as_of)s
  AND coalesce(first_event_at, submitted_at) <= %(as_of)s
GROUP BY ward_code
"""
# Medians do not add up across wards, so the city's is computed over the reports of all the
# wards asked for (a ward-scoped caller's "city" is its own wards), not from the wards' medians.
MEDIAN_RESOLUTION: Final = """
SELECT coalesce(ward_code, %(city)s),
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM resolved_at - submitted_at)) / 3600.0
FROM feedback_reports
WHERE resolved_at >= %(start)s AND resolved_at < %(end)s AND ward_code = ANY(%(wards)s)
GROUP BY ROLLUP (ward_code)
"""


def compute(parts: pd.DataFrame) -> pd.DataFrame:
    """KPIs from summed components. The one definition of each feedback KPI."""
    out = pd.DataFrame(index=parts.index)
    out["open_reports"] = parts["open_reports"].astype(int)
    out["overdue_open"] = parts["overdue_open"].astype(int)
    out["resolved_in_time_rate"] = ratio(parts["resolved_in_time"], parts["resolved"])
    out["median_resolution_hours"] = parts["median_resolution_hours"]
    # Satisfaction: mean citizen rating (1-5) of the ratings given inside the window.
    out["satisfaction"] = ratio(parts["rating_sum"], parts["ratings"])
    return out


def feedback_kpis(
    conn: psycopg.Connection[Any], wards: Sequence[str], window: Window, as_of: datetime
) -> pd.DataFrame:
    """Feedback KPIs for each ward and the city over `window`, open reports as of `as_of`.

    The live dashboard passes as_of = now; time travel passes an earlier T with a window ending
    at T's hour.
    """
    span = {"start": window.start, "end": window.end}
    rows = conn.execute(SUM_ROLLUP, span).fetchall()
    parts = pd.DataFrame(rows, columns=["ward_code", *COMPONENTS]).set_index("ward_code")
    open_now = conn.execute(OPEN_AS_OF, {"as_of": as_of}).fetchall()
    parts = parts.join(
        pd.DataFrame(open_now, columns=["ward_code", "open_reports", "overdue_open"]).set_index(
            "ward_code"
        ),
        how="outer",
    )
    frame = with_city(parts.astype(float), wards, [*COMPONENTS, "open_reports", "overdue_open"])
    medians = conn.execute(
        MEDIAN_RESOLUTION, {**span, "city": CITY, "wards": list(wards)}
    ).fetchall()
    # ROLLUP yields a city row (NULL) even when no report was resolved in the window.
    median = pd.Series({str(k): float(v) for k, v in medians if v is not None}, dtype=float)
    frame["median_resolution_hours"] = median.reindex(frame.index)
    return compute(frame)
