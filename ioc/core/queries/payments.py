"""Query step of the payments feed: payment KPIs per ward and for the city, from rollups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.queries.window import CITY, Window, ratio, with_city

COMPONENTS: Final = ("transactions", "amount_vnd", "public_total", "public_cashless")
KPIS: Final = ("transactions", "amount_vnd", "cashless_share_public", "acceptance_points")

SUM_ROLLUP: Final = """
SELECT ward_code, sum(transactions), sum(amount_vnd), sum(public_total), sum(public_cashless)
FROM payment_stats_hourly
WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY ward_code
"""
# Acceptance points are counted by local day: a merchant with a successful cashless payment on
# any day the window touches. A merchant belongs to one ward, so the city count is the sum.
ACCEPTANCE_POINTS: Final = """
SELECT ward_code, count(DISTINCT merchant_id)
FROM payment_merchant_days
WHERE day = ANY(%(days)s)
GROUP BY ward_code
"""


def compute(parts: pd.DataFrame) -> pd.DataFrame:
    """KPIs from summed components. The one definition of each payment KPI."""
    out = pd.DataFrame(index=parts.index)
    out["transactions"] = parts["transactions"].astype(int)
    out["amount_vnd"] = parts["amount_vnd"].astype("int64")
    out["cashless_share_public"] = ratio(parts["public_cashless"], parts["public_total"])
    out["acceptance_points"] = parts["acceptance_points"].astype(int)
    return out


def payment_kpis(
    conn: psycopg.Connection[Any], wards: Sequence[str], window: Window
) -> pd.DataFrame:
    """Payment KPIs for each ward and the city over `window`."""
    rows = conn.execute(SUM_ROLLUP, {"start": window.start, "end": window.end}).fetchall()
    parts = pd.DataFrame(rows, columns=["ward_code", *COMPONENTS]).set_index("ward_code")
    points = conn.execute(ACCEPTANCE_POINTS, {"days": window.local_days()}).fetchall()
    parts = parts.join(
        pd.DataFrame(points, columns=["ward_code", "acceptance_points"]).set_index("ward_code"),
        how="outer",
    )
    frame = with_city(parts.astype(float), wards, [*COMPONENTS, "acceptance_points"])
    assert CITY in frame.index  # noqa: S101 - with_city adds it
    return compute(frame)
