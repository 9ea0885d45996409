"""Callback step: the feed-health strip and the alert list with acknowledge buttons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from dash import html

from ioc.core.citypack import CityPack
from ioc.core.feeds import FEED_NAMES
from ioc.core.health import FeedHealth
from ioc.core.queries.alerts import Alert
from layouts.i18n import Lang, fmt_ago, fmt_duration, fmt_number, t

ACK: Final = "ack"
MAX_ALERTS: Final = 4


def stale_feeds(health: Sequence[FeedHealth], stale_after_s: Mapping[str, float]) -> frozenset[str]:
    """Feeds whose newest event is older than their threshold, that never had one, or whose
    ingest cannot read some of their records (their numbers are missing those)."""
    by_feed = {h.feed: h for h in health}
    out = set()
    for feed in FEED_NAMES:
        h = by_feed.get(feed)
        age = None if h is None else h.seconds_since_event
        if age is None or age > stale_after_s.get(feed, 60.0) or (h and h.stall_reason):
            out.add(feed)
    return frozenset(out)


def travel_note(hour_text: str, lang: Lang) -> list[Any]:
    """What the health strip says while time-travelling: no feed health for the past (only the
    latest state is stored), and up to which hour the hourly KPIs count."""
    return [
        html.Div(
            [
                html.Span(t("tt.health_hidden", lang)),
                html.Span(t("tt.hours_note", lang, hour=hour_text), className="travel-hours"),
            ],
            className="travel-note",
        )
    ]


def health_strip(health: Sequence[FeedHealth], stale: frozenset[str], lang: Lang) -> list[Any]:
    """One entry per feed: name, last event age, consumer lag; stale ones marked."""
    by_feed = {h.feed: h for h in health}
    items = []
    for feed in FEED_NAMES:
        h = by_feed.get(feed)
        age = None if h is None else h.seconds_since_event
        last = t("health.never", lang) if age is None else fmt_ago(age, lang)
        lag = None if h is None else h.consumer_lag
        parts: list[Any] = [
            html.Span("●", className="dot"),
            html.Span(t(f"feed.{feed}", lang), className="feed-name"),
            html.Span(last, className="feed-age", title=t("health.last_event", lang, ago=last)),
            html.Span(t("health.lag", lang, lag=fmt_number(lag, lang)), className="feed-lag"),
        ]
        if feed in stale:
            parts.append(html.Span(t("wall.stale", lang), className="stale-badge"))
        items.append(
            html.Div(
                parts,
                className="feed-health " + ("is-stale" if feed in stale else "is-live"),
                # Why it is stalled, for whoever walks up to the wall or hovers on a desk.
                title=feed if h is None or not h.stall_reason else f"{feed}: {h.stall_reason}",
            )
        )
    return items


def _subject(alert: Alert, pack: CityPack, lang: Lang) -> str:
    ref = alert.ref
    if ref.kind == "feed_stalled":
        return t(f"feed.{ref.feed}", lang)
    if ref.ward is None:
        return pack.title
    return pack.ward(ref.ward).name if ref.ward in pack else ref.ward


def alert_text(alert: Alert, pack: CityPack, lang: Lang) -> str:
    """One line naming the alert, in the chosen language."""
    value = (
        fmt_duration(alert.value, lang)
        if alert.kind == "feed_stalled"
        else fmt_number(alert.value, lang)
    )
    return t(f"alert.{alert.kind}", lang, value=value, subject=_subject(alert, pack, lang))


def alert_list(
    alerts: Sequence[Alert], pack: CityPack, lang: Lang, can_ack: bool = True
) -> list[Any]:
    """Unacknowledged alerts first; each with an acknowledge button (a pattern-matching id)
    unless can_ack is False (time travel: the past cannot be acknowledged)."""
    if not alerts:
        return [html.Div(t("wall.no_alerts", lang), className="no-alerts")]
    ordered = sorted(alerts, key=lambda a: a.acked)  # stable: keeps severity order within
    rows = []
    for alert in ordered[:MAX_ALERTS]:
        button = (
            html.Span(t("wall.acked", lang), className="acked")
            if alert.acked
            else html.Span()
            if not can_ack
            else html.Button(
                t("wall.ack", lang),
                id={"type": ACK, "kind": alert.ref.kind, "subject": alert.ref.subject},
                n_clicks=0,
                className="ack-button",
            )
        )
        rows.append(
            html.Div(
                [html.Span(alert_text(alert, pack, lang), className="alert-text"), button],
                className=f"alert alert-{alert.kind}" + (" is-acked" if alert.acked else ""),
            )
        )
    more = len(ordered) - MAX_ALERTS
    if more > 0:
        rows.append(html.Div(f"+{more}", className="alert-more"))
    return rows
