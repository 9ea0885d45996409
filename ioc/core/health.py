"""Health reading: each feed's ingest health row (freshness, lag, rate, stalls) as shown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

_SELECT = """
SELECT feed, last_event_time, last_ingest_at, events_total, duplicates_total, dead_letters,
       consumer_lag, rate_per_s, updated_at, now(), stall_reason, stalled_since
FROM feed_health ORDER BY feed
"""


@dataclass(frozen=True)
class FeedHealth:
    """One row of feed_health, plus the database's clock when it was read."""

    feed: str
    last_event_time: datetime | None
    last_ingest_at: datetime | None
    events_total: int
    duplicates_total: int
    dead_letters: int
    consumer_lag: int | None
    rate_per_s: float | None
    updated_at: datetime
    read_at: datetime
    # Set while records wait that cannot be read (not an event's fault): why, and since when.
    stall_reason: str | None = None
    stalled_since: datetime | None = None

    @property
    def seconds_since_event(self) -> float | None:
        """Age of the newest event, by the database's clock (None before the first one)."""
        if self.last_event_time is None:
            return None
        return (self.read_at - self.last_event_time).total_seconds()

    @property
    def seconds_since_ingest(self) -> float | None:
        if self.last_ingest_at is None:
            return None
        return (self.read_at - self.last_ingest_at).total_seconds()


def read_health(conn: psycopg.Connection[Any]) -> list[FeedHealth]:
    """Every feed's row, by feed name."""
    rows: Sequence[tuple[Any, ...]] = conn.execute(_SELECT).fetchall()
    return [
        FeedHealth(
            feed=str(r[0]),
            last_event_time=r[1],
            last_ingest_at=r[2],
            events_total=int(r[3]),
            duplicates_total=int(r[4]),
            dead_letters=int(r[5]),
            consumer_lag=None if r[6] is None else int(r[6]),
            rate_per_s=None if r[7] is None else float(r[7]),
            updated_at=r[8],
            read_at=r[9],
            stall_reason=None if r[10] is None else str(r[10]),
            stalled_since=r[11],
        )
        for r in rows
    ]
