"""Query step of the dossiers feed: KPIs per ward and for the city, from rollups and cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.queries.window import Window, ratio, with_city

COMPONENTS: Final = (
    "received",
    "received_online",
    "received_full_online",
    "resolved",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "processing_seconds",
)
KPIS: Final = (
    "received",
    "resolved",
    "on_time_rate",
    "overdue_backlog",
    "online_share",
    "full_online_share",
    "mean_processing_hours",
)

SUM_ROLLUP: Final = """
SELECT ward_code, sum(received), sum(received_online), sum(received_full_online), sum(resolved),
       sum(resolved_early), sum(resolved_on_time), sum(resolved_late), sum(processing_seconds)
FROM dossier_stats_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY ward_code
"""
# Open and past due as of T: first seen by T, not closed by T, due before T. The expression
# index on coalesce(closed_at, 'infinity') reads only the cases still open at T (for T = now,
# the open cases), so the cost does not grow with history.
OVERDUE: Final = """
SELECT ward_code, count(*) FROM dossiers
WHERE coalesce(closed_at, 'infinity'::timestamptz) > %(as_of)s
  AND coalesce(first_event_at, received_at) <= %(as_of)s
  AND due_at < %(as_of)s
GROUP BY ward_code
"""


def compute(parts: pd.DataFrame) -> pd.DataFrame:
    """KPIs from summed components (rows: wards and city). The one definition of each KPI."""
    out = pd.DataFrame(index=parts.index)
    out["received"] = parts["received"].astype(int)
    out["resolved"] = parts["resolved"].astype(int)
    # On time = resolved early or on time, over all resolved.
    out["on_time_rate"] = ratio(
        parts["resolved_early"] + parts["resolved_on_time"], parts["resolved"]
    )
    out["overdue_backlog"] = parts["overdue_backlog"].astype(int)
    out["online_share"] = ratio(parts["received_online"], parts["received"])
    out["full_online_share"] = ratio(parts["received_full_online"], parts["received"])
    out["mean_processing_hours"] = ratio(parts["processing_seconds"] / 3600.0, parts["resolved"])
    return out


def dossier_kpis(
    conn: psycopg.Connection[Any], wards: Sequence[str], window: Window, as_of: datetime
) -> pd.DataFrame:
    """Dossier KPIs for each ward and the city over `window`, the backlog as it was at `as_of`.

    The live dashboard passes as_of = now; time travel passes an earlier T with a window ending
    at T's hour (a window's counts are those of its hourly buckets).
    """
    rows = conn.execute(SUM_ROLLUP, {"start": window.start, "end": window.end}).fetchall()
    parts = pd.DataFrame(rows, columns=["ward_code", *COMPONENTS]).set_index("ward_code")
    overdue = conn.execute(OVERDUE, {"as_of": as_of}).fetchall()
    parts = parts.join(
        pd.DataFrame(overdue, columns=["ward_code", "overdue_backlog"]).set_index("ward_code"),
        how="outer",
    )
    return compute(with_city(parts.astype(float), wards, [*COMPONENTS, "overdue_backlog"]))
