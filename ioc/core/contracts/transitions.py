"""Contract step for case feeds: which events a case may accept, judged on all of its events.

The rules look at the set of a case's accepted events, not at the order in which they arrived, so
that out-of-order and duplicated delivery end in the same state as delivery in order. An event is
impossible when no events still to come could make the case's history valid: something before the
case began, a second closing of another kind, activity after the case closed, a follow-up (result
returned, rating) before or without its closing, or a case whose static facts disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from types import MappingProxyType
from typing import Final

from ioc.core.feeds import DOSSIERS, FEEDBACK


@dataclass(frozen=True)
class Lifecycle:
    """The shape of one case feed's life."""

    start_kind: str
    open_kinds: frozenset[str]
    closing_kinds: frozenset[str]
    # follow-up kind -> the closing kinds it may follow
    follow_ups: Mapping[str, frozenset[str]]

    @cached_property
    def once_kinds(self) -> frozenset[str]:
        return self.closing_kinds | frozenset(self.follow_ups) | {self.start_kind}


DOSSIER_LIFECYCLE = Lifecycle(
    start_kind="received",
    open_kinds=frozenset({"received", "supplement_requested", "supplement_received", "processing"}),
    closing_kinds=frozenset({"resolved", "withdrawn", "rejected"}),
    follow_ups={"returned": frozenset({"resolved"})},
)
FEEDBACK_LIFECYCLE = Lifecycle(
    start_kind="submitted",
    open_kinds=frozenset({"submitted", "assigned"}),
    closing_kinds=frozenset({"resolved", "rejected"}),
    follow_ups={"rated": frozenset({"resolved", "rejected"})},
)


@dataclass(frozen=True)
class CaseEvent:
    """What the rules need to know of one event of a case."""

    event_id: str
    kind: str
    time: datetime
    started_at: datetime  # received_at / submitted_at as the event states it
    ward_code: str


@dataclass
class CaseHistory:
    """The accepted events of one case so far."""

    events: dict[str, CaseEvent] = field(default_factory=dict)

    def check(self, life: Lifecycle, ev: CaseEvent) -> str | None:
        """None when `ev` may join the case, else why it is impossible (one line)."""
        known = list(self.events.values())
        if known:
            first = known[0]
            if ev.started_at != first.started_at:
                return (
                    f"start time {ev.started_at.isoformat()} disagrees with the case's "
                    f"{first.started_at.isoformat()}"
                )
            if ev.ward_code != first.ward_code:
                return f"ward {ev.ward_code} disagrees with the case's ward {first.ward_code}"
        if ev.time < ev.started_at:
            return f"{ev.kind} at {ev.time.isoformat()} is before the case began"
        if ev.kind in life.once_kinds and any(k.kind == ev.kind for k in known):
            return f"a second {ev.kind!r} event for the same case"
        closing = next((k for k in known if k.kind in life.closing_kinds), None)
        follow = [k for k in known if k.kind in life.follow_ups]
        if ev.kind in life.open_kinds:
            if closing is not None and ev.time > closing.time:
                return f"{ev.kind} after the case was {closing.kind}"
        elif ev.kind in life.closing_kinds:
            if closing is not None:
                return f"{ev.kind} but the case was already {closing.kind}"
            late_open = [k for k in known if k.kind in life.open_kinds and k.time > ev.time]
            if late_open:
                return f"{ev.kind} before the case's later {late_open[0].kind}"
            for f in follow:
                if ev.kind not in life.follow_ups[f.kind] or f.time < ev.time:
                    return f"{ev.kind} does not fit the case's {f.kind}"
        elif (
            ev.kind in life.follow_ups
            and closing is not None
            and (closing.kind not in life.follow_ups[ev.kind] or ev.time < closing.time)
        ):
            return f"{ev.kind} cannot follow a case {closing.kind} at that time"
        return None

    def add(self, ev: CaseEvent) -> None:
        self.events[ev.event_id] = ev


LIFECYCLES: Final[Mapping[str, Lifecycle]] = MappingProxyType(
    {DOSSIERS.schema: DOSSIER_LIFECYCLE, FEEDBACK.schema: FEEDBACK_LIFECYCLE}
)
