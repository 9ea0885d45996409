"""Query step of the wall's alerts: what each is about, their conditions, dead letters, acks."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import pandas as pd
import psycopg

from ioc.core.feeds import AIR_QUALITY, DOSSIERS, FEED_NAMES
from ioc.core.health import FeedHealth
from ioc.core.queries.window import CITY
from ioc.core.targets import DashboardConfig

AlertKind = Literal["feed_stalled", "aqi", "dead_letters", "overdue_backlog"]
# Most severe first: the wall lists alerts in this order.
KINDS: Final[tuple[AlertKind, ...]] = ("feed_stalled", "aqi", "dead_letters", "overdue_backlog")
# The kinds raised for one ward, with the feed whose numbers raise them.
WARD_KINDS: Final[Mapping[str, str]] = {"aqi": AIR_QUALITY.name, "overdue_backlog": DOSSIERS.name}

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

    @classmethod
    def of(cls, config: DashboardConfig) -> Thresholds:
        """The thresholds a pack's dashboard configuration sets."""
        a = config.alerts
        return cls(
            aqi_min=a.aqi_min,
            overdue_backlog_max=a.overdue_backlog_max,
            feed_stalled_after_s=a.feed_stalled_after_s,
            stale_after_s=config.stale_after_s,
            dead_letter_spike=a.dead_letter_spike,
        )


@dataclass(frozen=True)
class AlertRef:
    """What an alert is about, which is what an acknowledgement names: a kind and its subject,
    a ward code (aqi, overdue_backlog), a feed (feed_stalled) or "city" (dead_letters)."""

    kind: AlertKind
    subject: str

    @property
    def ward(self) -> str | None:
        """The ward the alert is about; None for an alert about the whole city."""
        return self.subject if self.kind in WARD_KINDS else None

    @property
    def feed(self) -> str | None:
        """The feed whose numbers raise the alert; None for dead letters (any feed's)."""
        if self.kind == "feed_stalled":
            return self.subject
        return WARD_KINDS.get(self.kind)

    @property
    def key(self) -> str:
        """Its row key in alert_acks; written and matched here only, never read back apart."""
        return f"{self.kind}:{self.subject}"

    @classmethod
    def named(cls, kind: object, subject: object, wards: Collection[str]) -> AlertRef | None:
        """The alert a (possibly forged) kind and subject name, or None when they name none:
        a ward kind needs a ward of `wards`, feed_stalled a feed, dead_letters the city."""
        if not isinstance(subject, str):
            return None
        found = next((k for k in KINDS if k == kind), None)
        if found is None:
            return None
        if found in WARD_KINDS:
            valid = subject in wards
        elif found == "feed_stalled":
            valid = subject in FEED_NAMES
        else:
            valid = subject == CITY
        return cls(found, subject) if valid else None


@dataclass(frozen=True)
class Alert:
    """One active alert: what it is about, the value that raised it, and whether it is acked."""

    ref: AlertRef
    value: float
    threshold: float
    acked: bool = False

    @property
    def kind(self) -> AlertKind:
        return self.ref.kind


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


def _ward_alerts(kpis: pd.DataFrame, t: Thresholds) -> list[Alert]:
    out: list[Alert] = []
    for ward in (str(w) for w in kpis.index if w != CITY):
        aqi = float(kpis["aqi"].get(ward, math.nan))
        if not math.isnan(aqi) and aqi >= t.aqi_min:
            out.append(Alert(AlertRef("aqi", ward), aqi, t.aqi_min))
        backlog = float(kpis["overdue_backlog"].get(ward, 0))
        if backlog > t.overdue_backlog_max:
            out.append(Alert(AlertRef("overdue_backlog", ward), backlog, t.overdue_backlog_max))
    return out


def _feed_alerts(health: Sequence[FeedHealth], t: Thresholds) -> list[Alert]:
    out: list[Alert] = []
    for h in health:
        stale = t.stale_after_s.get(h.feed, t.feed_stalled_after_s)
        if feed_stalled(h, stale, t.feed_stalled_after_s):
            age = h.seconds_since_event
            value = math.inf if age is None else age
            out.append(Alert(AlertRef("feed_stalled", h.feed), value, stale))
    return out


def evaluate(
    kpis: pd.DataFrame,
    health: Sequence[FeedHealth],
    dead_letters_recent: int,
    acks: Mapping[str, datetime],
    t: Thresholds,
) -> list[Alert]:
    """Active alerts, most severe kind first, then by value (largest first)."""
    out = _ward_alerts(kpis, t) + _feed_alerts(health, t)
    if dead_letters_recent >= t.dead_letter_spike:
        out.append(Alert(AlertRef("dead_letters", CITY), dead_letters_recent, t.dead_letter_spike))
    order = {k: i for i, k in enumerate(KINDS)}
    out.sort(key=lambda a: (order[a.kind], -a.value, a.ref.subject))
    return [Alert(a.ref, a.value, a.threshold, acked=a.ref.key in acks) for a in out]


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


def acknowledge(conn: psycopg.Connection[Any], alert: AlertRef, by: str = "") -> None:
    """Record an acknowledgement (the reader role may insert into alert_acks, nothing else)."""
    conn.execute(INSERT_ACK, {"key": alert.key[:200], "by": by[:100]})


def read_alerts(
    conn: psycopg.Connection[Any],
    kpis: pd.DataFrame,
    health: Sequence[FeedHealth],
    now: datetime,
    config: DashboardConfig,
    *,
    as_of: bool = False,
) -> tuple[Alert, ...]:
    """The alerts of a snapshot's numbers at `now`: dead letters and acknowledgements read up to
    `now` (as_of: none after it either), thresholds from the pack's configuration."""
    dead = recent_dead_letters(conn, now, config.alerts.dead_letter_window_s, as_of=as_of)
    acks = recent_acks(conn, now, config.alerts.ack_hold_s, as_of=as_of)
    return tuple(evaluate(kpis, health, dead, acks, Thresholds.of(config)))
