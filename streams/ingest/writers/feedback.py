"""Consumer step of the feedback feed: ioc.feedback.v1 into feedback_events, reports and rollups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from ioc.core.contracts import FeedbackEvent
from ioc.core.contracts.transitions import FEEDBACK_LIFECYCLE
from ioc.core.feeds import FEEDBACK
from streams.ingest.writers.cases import CaseFeedSpec, CaseWriter

EVENT_COLUMNS: Final = (
    "event_id",
    "event_time",
    "ward_code",
    "report_id",
    "kind",
    "category",
    "urgency",
    "channel",
    "lat",
    "lon",
    "submitted_at",
    "due_at",
    "rating",
)
CASE_COLUMNS: Final = (
    "report_id",
    "ward_code",
    "category",
    "urgency",
    "channel",
    "lat",
    "lon",
    "submitted_at",
    "due_at",
    "status",
    "status_time",
    "closed_at",
    "resolved_at",
    "rating",
    "is_open",
    "event_count",
    "first_event_at",
)
KIND_RANK: Final = {
    k: i for i, k in enumerate(("submitted", "assigned", "resolved", "rejected", "rated"))
}


def _row(ev: FeedbackEvent) -> tuple[object, ...]:
    return (
        ev.event_id,
        ev.event_time,
        ev.ward_code,
        ev.report_id,
        ev.kind,
        ev.category,
        ev.urgency,
        ev.channel,
        ev.lat,
        ev.lon,
        ev.submitted_at,
        ev.due_at,
        ev.rating,
    )


def case_row(events: Sequence[Sequence[Any]]) -> tuple[object, ...]:
    """The feedback_reports row for a report from all of its event rows."""
    latest = max(events, key=lambda r: (r[1], KIND_RANK[r[4]]))
    closing = [r for r in events if r[4] in FEEDBACK_LIFECYCLE.closing_kinds]
    rated = [r for r in events if r[4] == "rated"]
    # No longer open from its closing, or from its rating when the closing preceded the stream.
    ended = [r[1] for r in events if r[4] not in FEEDBACK_LIFECYCLE.open_kinds]
    # A rating follows the closing; the report's state is its closing, not "rated".
    status = latest[4] if latest[4] != "rated" or not closing else closing[0][4]
    status_time = latest[1] if latest[4] != "rated" or not closing else closing[0][1]
    return (
        latest[3],
        latest[2],
        latest[5],
        latest[6],
        latest[7],
        latest[8],
        latest[9],
        latest[10],
        latest[11],
        status,
        status_time,
        min(ended) if ended else None,
        closing[0][1] if closing and closing[0][4] == "resolved" else None,
        rated[0][12] if rated else None,
        status in FEEDBACK_LIFECYCLE.open_kinds,
        len(events),
        min(r[1] for r in events),
    )


def rollup_increments(
    events: Sequence[FeedbackEvent],
) -> dict[tuple[object, ...], dict[str, float | int]]:
    """Per (ward, hour) additions to feedback_stats_hourly from newly accepted events."""
    out: dict[tuple[object, ...], dict[str, float | int]] = defaultdict(lambda: defaultdict(int))
    for ev in events:
        key = (ev.ward_code, ev.event_time.replace(minute=0, second=0, microsecond=0))
        inc = out[key]
        if ev.kind == "submitted":
            inc["submitted"] += 1
        elif ev.kind == "resolved":
            inc["resolved"] += 1
            inc["resolved_in_time"] += ev.event_time <= ev.due_at
        elif ev.kind == "rejected":
            inc["rejected"] += 1
        elif ev.kind == "rated" and ev.rating is not None:
            inc["ratings"] += 1
            inc["rating_sum"] += ev.rating
    return {k: dict(v) for k, v in out.items() if v}


WRITER: Final = CaseWriter(
    CaseFeedSpec(
        feed=FEEDBACK,
        event_type=FeedbackEvent,
        events_table="feedback_events",
        event_columns=EVENT_COLUMNS,
        case_table="feedback_reports",
        case_id_column="report_id",
        case_columns=CASE_COLUMNS,
        rollup_table="feedback_stats_hourly",
        lifecycle=FEEDBACK_LIFECYCLE,
        kind_rank=KIND_RANK,
        case_id=lambda ev: ev.report_id,
        row=_row,
        started_at_index=10,
        case_row=case_row,
        increments=rollup_increments,
    )
)
