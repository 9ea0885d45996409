"""Query step of time travel: the span of the stored history (the timeline's range)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from ioc.core.queries.window import HOUR

# Each rollup's min and max bucket come from its bucket index (two index probes per table), so
# the cost does not grow with the history.
SPAN: Final = """
SELECT min(lo), max(hi) FROM (
    SELECT min(bucket) AS lo, max(bucket) AS hi FROM dossier_stats_hourly
    UNION ALL SELECT min(bucket), max(bucket) FROM payment_stats_hourly
    UNION ALL SELECT min(bucket), max(bucket) FROM feedback_stats_hourly
    UNION ALL SELECT min(bucket), max(bucket) FROM air_quality_station_hourly
) AS s
"""


@dataclass(frozen=True)
class Span:
    """From the first hour bucket that holds an event to the end of the last one."""

    start: datetime
    end: datetime


def data_span(conn: psycopg.Connection[Any]) -> Span | None:
    """The history's span in the rollups, or None while they are empty."""
    row = conn.execute(SPAN).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return Span(row[0], row[1] + HOUR)
