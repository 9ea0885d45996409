"""Query step of the wall's alerts: the conditions (pure, from a snapshot's numbers), recent dead
letters, and acknowledgements read and written in table alert_acks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.health import FeedHealth
from ioc.core.queries.window import CITY

KINDS: Final = ("aqi", "overdue_backlog", "feed_stalled", "dead_letters")

RECENT_DEAD: Final = """
SELECT count(*) FROM dead_letters WHERE received_at >= %(since)s
"""
RECENT_ACKS: Final = """
SELECT alert_key, max(acked_at) FROM alert_acks WHERE acked_at >= %(since)s GROUP BY alert_key
"""
# Time travel: the same as they were at T (nothing received or acknowledged after T counts).
DEAD_UNTIL: Final = """
SELECT count(*) FROM dead_letters WHERE received_at >= %(since)s AND received_at <= %(until)s
"""
ACKS_UNTIL: Final = """
SELECT alert_key, max(acked_at) FROM alert_acks
WHERE acked_at >= %(since)s AND acked_at <= %(until)s GROUP BY alert_key
"""
INSERT_ACK: Final = """
INSERT INTO alert_acks (alert_key, acked_by) VALUES (%(key)s, %(by)s)
"""


@dataclass(frozen=True)
class Thresholds:
    """When a condition becomes an alert (see ioc.core.targets.Alerts, which carries these)."""

    aqi_min: int
    overdue_backlog_max: int
    feed_stalled_after_s: float
    stale_after_s: Mapping[str, float]
    dead_letter_spike: int


@dataclass(frozen=True)
class Alert:
    """One active alert; `key` identifies the condition (kind:subject) for acknowledgement."""

    key: str
    kind: str
    subject: str  # ward code, feed name or "city"
    value: float
    threshold: float
    acked: bool = False


def feed_stalled(h: FeedHealth, stale_after_s: float, stalled_after_s: float) -> bool:
    """A feed is stalled when its newest event is older than its staleness threshold, when
    messages wait (lag > 0) while nothing has been ingested for `stalled_after_s`, or when the
    ingest says some of its records cannot be read (stall_reason, e.g. a missing codec)."""
    if h.stall_reason:
        return True
    age = h.seconds_since_event
    if age is None or age > stale_after_s:
        return True
    since_ingest = h.seconds_since_ingest
    waiting = (h.consumer_lag or 0) > 0
    return waiting and (since_ingest is None or since_ingest > stalled_after_s)


def evaluate(
    kpis: pd.DataFrame,
    health: Sequence[FeedHealth],
    dead_letters_recent: int,
    acks: Mapping[str, datetime],
    t: Thresholds,
) -> list[Alert]:
    """Active alerts, most severe kind first, then by value (largest first)."""
    out: list[Alert] = []
    wards = [w for w in kpis.index if w != CITY]
    for ward in wards:
        aqi = float(kpis["aqi"].get(ward, math.nan))
        if not math.isnan(aqi) and aqi >= t.aqi_min:
            out.append(Alert(f"aqi:{ward}", "aqi", str(ward), aqi, t.aqi_min))
        backlog = float(kpis["overdue_backlog"].get(ward, 0))
        if backlog > t.overdue_backlog_max:
            out.append(
                Alert(
                    f"overdue_backlog:{ward}",
                    "overdue_backlog",
                    str(ward),
                    backlog,
                    t.overdue_backlog_max,
                )
            )
    for h in health:
        stale = t.stale_after_s.get(h.feed, t.feed_stalled_after_s)
        if feed_stalled(h, stale, t.feed_stalled_after_s):
            age = h.seconds_since_event
            out.append(
                Alert(
                    f"feed_stalled:{h.feed}",
                    "feed_stalled",
                    h.feed,
                    math.inf if age is None else age,
                    stale,
                )
            )
    if dead_letters_recent >= t.dead_letter_spike:
        out.append(
            Alert(
                "dead_letters:city", "dead_letters", CITY, dead_letters_recent, t.dead_letter_spike
            )
        )
    order = {k: i for i, k in enumerate(("feed_stalled", "aqi", "dead_letters", "overdue_backlog"))}
    out.sort(key=lambda a: (order[a.kind], -a.value, a.subject))
    return [Alert(a.key, a.kind, a.subject, a.value, a.threshold, acked=a.key in acks) for a in out]


def recent_dead_letters(
    conn: psycopg.Connection[Any], now: datetime, window_s: float, *, as_of: bool = False
) -> int:
    """Dead letters received in the `window_s` seconds before `now` (index on received_at);
    as_of: none received after `now` either (time travel to an earlier now)."""
    params = {"since": now - timedelta(seconds=window_s), "until": now}
    row = conn.execute(DEAD_UNTIL if as_of else RECENT_DEAD, params).fetchone()
    return int(row[0]) if row else 0


def recent_acks(
    conn: psycopg.Connection[Any], now: datetime, hold_s: float, *, as_of: bool = False
) -> dict[str, datetime]:
    """Alert key -> newest acknowledgement, for those younger than `hold_s` seconds at `now`;
    as_of: only those made by `now` (time travel)."""
    params = {"since": now - timedelta(seconds=hold_s), "until": now}
    rows = conn.execute(ACKS_UNTIL if as_of else RECENT_ACKS, params).fetchall()
    return {str(k): v for k, v in rows}


def acknowledge(conn: psycopg.Connection[Any], key: str, by: str = "") -> None:
    """Record an acknowledgement (the reader role may insert into alert_acks, nothing else)."""
    conn.execute(INSERT_ACK, {"key": key[:200], "by": by[:100]})
