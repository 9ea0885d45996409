"""Consumer step of the dossiers feed: ioc.dossiers.v1 into dossier_events, dossiers and rollups."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from ioc.core.contracts import DossierEvent, dossier_outcome
from ioc.core.contracts.transitions import DOSSIER_LIFECYCLE
from ioc.core.feeds import DOSSIERS
from streams.ingest.writers.cases import CaseFeedSpec, CaseWriter

EVENT_COLUMNS: Final = (
    "event_id",
    "event_time",
    "ward_code",
    "dossier_id",
    "kind",
    "procedure_field",
    "channel",
    "service_level",
    "received_at",
    "due_at",
    "digitized",
    "e_signed",
    "fee_vnd",
)
CASE_COLUMNS: Final = (
    "dossier_id",
    "ward_code",
    "procedure_field",
    "channel",
    "service_level",
    "received_at",
    "due_at",
    "digitized",
    "fee_vnd",
    "status",
    "status_time",
    "resolved_at",
    "outcome",
    "e_signed",
    "is_open",
    "event_count",
    "first_event_at",
    "closed_at",
)
# Ties in event_time are broken by how far along the life cycle a kind is.
KIND_RANK: Final = {
    k: i
    for i, k in enumerate(
        (
            "received",
            "supplement_requested",
            "supplement_received",
            "processing",
            "resolved",
            "withdrawn",
            "rejected",
            "returned",
        )
    )
}


def _row(ev: DossierEvent) -> tuple[object, ...]:
    return (
        ev.event_id,
        ev.event_time,
        ev.ward_code,
        ev.dossier_id,
        ev.kind,
        ev.procedure_field,
        ev.channel,
        ev.service_level,
        ev.received_at,
        ev.due_at,
        ev.digitized,
        ev.e_signed,
        ev.fee_vnd,
    )


def case_row(events: Sequence[Sequence[Any]]) -> tuple[object, ...]:
    """The dossiers row for a case from all of its event rows (in EVENT_COLUMNS order)."""
    latest = max(events, key=lambda r: (r[1], KIND_RANK[r[4]]))
    resolved = [r[1] for r in events if r[4] == "resolved"]
    resolved_at: datetime | None = min(resolved) if resolved else None
    # Time travel (open as of T) needs when the case was first seen and when it stopped being
    # open: its closing, or a follow-up when the closing came before the stream did.
    ended = [r[1] for r in events if r[4] not in DOSSIER_LIFECYCLE.open_kinds]
    status = latest[4]
    return (
        latest[3],
        latest[2],
        latest[5],
        latest[6],
        latest[7],
        latest[8],
        latest[9],
        latest[10],
        latest[12],
        status,
        latest[1],
        resolved_at,
        dossier_outcome(resolved_at, latest[9]) if resolved_at else None,
        any(r[11] for r in events),
        status in DOSSIER_LIFECYCLE.open_kinds,
        len(events),
        min(r[1] for r in events),
        min(ended) if ended else None,
    )


def rollup_increments(
    events: Sequence[DossierEvent],
) -> dict[tuple[object, ...], dict[str, float | int]]:
    """Per (ward, hour) additions to dossier_stats_hourly from newly accepted events."""
    out: dict[tuple[object, ...], dict[str, float | int]] = defaultdict(lambda: defaultdict(int))
    for ev in events:
        key = (ev.ward_code, ev.event_time.replace(minute=0, second=0, microsecond=0))
        inc = out[key]
        if ev.kind == "received":
            inc["received"] += 1
            inc["received_online"] += ev.channel == "online"
            inc["received_full_online"] += ev.service_level == "full_online"
        elif ev.kind == "resolved":
            inc["resolved"] += 1
            inc["resolved_" + dossier_outcome(ev.event_time, ev.due_at)] += 1
            inc["processing_seconds"] += (ev.event_time - ev.received_at).total_seconds()
    return {k: dict(v) for k, v in out.items() if v}


WRITER: Final = CaseWriter(
    CaseFeedSpec(
        feed=DOSSIERS,
        event_type=DossierEvent,
        events_table="dossier_events",
        event_columns=EVENT_COLUMNS,
        case_table="dossiers",
        case_id_column="dossier_id",
        case_columns=CASE_COLUMNS,
        rollup_table="dossier_stats_hourly",
        lifecycle=DOSSIER_LIFECYCLE,
        kind_rank=KIND_RANK,
        case_id=lambda ev: ev.dossier_id,
        row=_row,
        started_at_index=8,
        case_row=case_row,
        increments=rollup_increments,
    )
)
