"""Table step: per-feed ingest health (freshness, lag, rate, dead letters), written by members."""

# Only the writing is here: reading it is the core's (ioc.core.health), since the dashboard and
# `ioc status` read it too.

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# One statement for every feed of a batch: this member's own row (its partitions' lag, its rate)
# and the feed's row, where counters add up, times only move forward, and lag and rate are this
# member's plus those of the group's other members that reported within MEMBER_FRESH_S. A
# data-modifying CTE's rows are invisible to the rest of its statement, hence "others + mine"
# (its RETURNING rows are not: they carry this member's stalled_since, kept across reports).
# A feed is stalled while any fresh member says so; the oldest of their stalls is shown.
_UPSERT = """
WITH u AS (
    SELECT * FROM unnest(%(feed)s::text[], %(time)s::timestamptz[], %(touched)s::boolean[],
                         %(n)s::bigint[], %(d)s::bigint[], %(x)s::bigint[], %(lag)s::bigint[],
                         %(rate)s::double precision[], %(stall)s::text[])
                  AS u(f, t, touched, n, d, x, lag, rate, stall)
), mine AS (
    INSERT INTO feed_health_members AS m (feed, member, consumer_lag, rate_per_s, stall_reason,
                                          stalled_since, updated_at)
    SELECT f, %(member)s, lag, rate, stall, CASE WHEN stall IS NOT NULL THEN now() END, now()
    FROM u
    ON CONFLICT (feed, member) DO UPDATE SET
        consumer_lag  = EXCLUDED.consumer_lag,
        rate_per_s    = EXCLUDED.rate_per_s,
        stall_reason  = EXCLUDED.stall_reason,
        stalled_since = CASE WHEN EXCLUDED.stall_reason IS NOT NULL
                             THEN COALESCE(m.stalled_since, now()) END,
        updated_at    = now()
    RETURNING feed, stalled_since
), others AS (
    SELECT feed, sum(consumer_lag) AS lag, sum(rate_per_s) AS rate, min(stalled_since) AS since,
           (array_agg(stall_reason ORDER BY stalled_since)
                FILTER (WHERE stall_reason IS NOT NULL))[1] AS stall
    FROM feed_health_members
    WHERE feed = ANY(%(feed)s) AND member <> %(member)s
      AND updated_at > now() - make_interval(secs => %(fresh_s)s)
    GROUP BY feed
)
INSERT INTO feed_health AS h (feed, last_event_time, last_ingest_at, events_total,
    duplicates_total, dead_letters, consumer_lag, rate_per_s, stall_reason, stalled_since,
    updated_at)
SELECT f, t, CASE WHEN touched THEN now() END, n, d, x,
       u.lag + coalesce(o.lag, 0), u.rate + coalesce(o.rate, 0),
       CASE WHEN o.since < mine.stalled_since OR mine.stalled_since IS NULL THEN o.stall
            ELSE u.stall END,
       LEAST(mine.stalled_since, o.since), now()
FROM u JOIN mine ON mine.feed = u.f LEFT JOIN others AS o ON o.feed = u.f
ORDER BY f
ON CONFLICT (feed) DO UPDATE SET
    last_event_time  = GREATEST(h.last_event_time, EXCLUDED.last_event_time),
    last_ingest_at   = COALESCE(EXCLUDED.last_ingest_at, h.last_ingest_at),
    events_total     = h.events_total + EXCLUDED.events_total,
    duplicates_total = h.duplicates_total + EXCLUDED.duplicates_total,
    dead_letters     = h.dead_letters + EXCLUDED.dead_letters,
    consumer_lag     = EXCLUDED.consumer_lag,
    rate_per_s       = EXCLUDED.rate_per_s,
    stall_reason     = EXCLUDED.stall_reason,
    stalled_since    = EXCLUDED.stalled_since,
    updated_at       = now()
"""
# A member reports with every batch and at least every heartbeat (5 s); one silent for longer
# than this has stopped or lost its database, and its partitions have other owners by now.
MEMBER_FRESH_S = 20.0
# Rows of members that died without leaving (SIGKILL) are removed after this long.
_FORGET_MEMBERS = """
DELETE FROM feed_health_members
WHERE member = %(member)s OR updated_at < now() - make_interval(secs => %(forget_s)s)
"""
MEMBER_FORGET_S = 3600.0


@dataclass
class FeedDelta:
    """What one batch did to one feed."""

    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead: int = 0
    last_event_time: datetime | None = None

    def add_time(self, t: datetime | None) -> None:
        if t is not None and (self.last_event_time is None or t > self.last_event_time):
            self.last_event_time = t


class RateWindow:
    """Events per second over the last `window_s` seconds (or since the start, if shorter)."""

    def __init__(self, window_s: float = 10.0, start: float = 0.0) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        self.window_s = window_s
        self._start = start
        self._samples: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, t: float, n: int) -> None:
        """Count n events at monotonic time t (times must not go backwards)."""
        if n:
            self._samples.append((t, n))
            self._sum += n
        self._trim(t)

    def rate(self, t: float, extra: int = 0) -> float:
        """The rate at time t, as if `extra` more events were counted at t."""
        self._trim(t)
        span = min(self.window_s, t - self._start)
        if span <= 0:
            return 0.0
        return (self._sum + extra) / span

    def _trim(self, t: float) -> None:
        cutoff = t - self.window_s
        while self._samples and self._samples[0][0] <= cutoff:
            self._sum -= self._samples.popleft()[1]


def this_member() -> str:
    """This process's name among the group's members: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def write_health(
    conn: psycopg.Connection[Any],
    deltas: Mapping[str, FeedDelta],
    lag: Mapping[str, int | None],
    rates: Mapping[str, float],
    member: str,
    stalls: Mapping[str, str] | None = None,
) -> None:
    """Upsert one row per feed in `deltas`, and `member`'s own, inside the caller's transaction;
    `stalls` maps a feed to why this member cannot read some of its records (cleared if absent)."""
    feeds = sorted(deltas)  # a fixed order keeps concurrent consumers from deadlocking
    if not feeds:
        return
    conn.execute(
        _UPSERT,
        {
            "feed": feeds,
            "time": [deltas[f].last_event_time for f in feeds],
            "touched": [deltas[f].records > 0 for f in feeds],
            "n": [deltas[f].inserted for f in feeds],
            "d": [deltas[f].duplicates for f in feeds],
            "x": [deltas[f].dead for f in feeds],
            "lag": [lag.get(f) for f in feeds],
            "rate": [round(rates.get(f, 0.0), 3) for f in feeds],
            "stall": [(stalls or {}).get(f) for f in feeds],
            "member": member,
            "fresh_s": MEMBER_FRESH_S,
        },
    )


def leave_health(conn: psycopg.Connection[Any], member: str) -> None:
    """Remove `member`'s rows (it is stopping) and those of members long gone."""
    conn.execute(_FORGET_MEMBERS, {"member": member, "forget_s": MEMBER_FORGET_S})
