"""Simulator step of the feedback feed: citizen reports (phản ánh kiến nghị) and their life cycle.

Reports arrive around the clock (mostly by day) from the app, Zalo, the hotline, the web portal or
a counter, at a location in a ward, in proportion to population. Each is assigned, then resolved
or rejected before or after its deadline (24 h for urgent reports, working days otherwise), and
sometimes rated by the citizen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Final, cast

from ioc.core.contracts import (
    FEEDBACK_CATEGORIES,
    FEEDBACK_CHANNELS,
    URGENCIES,
    FeedbackEvent,
    encode_event,
)
from ioc.core.contracts.feedback import FeedbackCategory, FeedbackChannel, FeedbackKind, Urgency
from ioc.core.feeds import FEEDBACK
from simulators.cases import CaseLoop
from simulators.context import SimContext
from simulators.core import (
    Item,
    Picker,
    factor_at,
    interpolate_hourly,
    normalise,
    poisson,
    slot_of_day,
    slot_times,
    stream,
)
from simulators.timebase import (
    AFTERNOON,
    MORNING,
    WORK_SECONDS,
    local_day,
    second_of_day,
    to_datetime,
)

FEED: Final = FEEDBACK
# Bound once: every emitted item carries both, and `index` searches the registry.
TOPIC: Final = FEED.topic
INDEX: Final = FEED.index

FEEDBACK_HOURS = (
    0.10, 0.05, 0.03, 0.03, 0.05, 0.20, 0.60, 1.20, 1.60, 1.60, 1.40, 1.20,
    0.90, 1.00, 1.30, 1.30, 1.20, 1.10, 1.00, 1.10, 1.20, 1.00, 0.60, 0.30,
)  # fmt: skip
# Channels that carry the phone's position; the others give an address an operator geocodes
# and a ward the operator records.
GPS_CHANNELS = frozenset({"app", "zalo", "web"})
_LOCATION_TRIES = 40


class _Report:
    __slots__ = (
        "category",
        "channel",
        "due",
        "id",
        "key",
        "late",
        "place",
        "rating",
        "stamps",
        "submitted",
        "urgency",
        "ward",
    )
    category: FeedbackCategory
    channel: FeedbackChannel
    due: int
    id: str
    key: bytes
    late: bool
    rating: int
    submitted: int
    urgency: Urgency

    def __init__(self, ward: str) -> None:
        self.ward = ward
        # (lat, lon, ward_code or None) and (submitted_at, due_at): made on first emission.
        self.place: tuple[float, float, str | None] | None = None
        self.stamps: tuple[datetime, datetime] | None = None


class FeedbackSimulator:
    """Generates ioc.feedback.v1 events for one run."""

    def __init__(self, ctx: SimContext) -> None:
        p = ctx.params
        self._ctx = ctx
        self._rng = stream(ctx.seed, FEED.name)
        self._place_rng = stream(ctx.seed, FEED.name, "places")
        self._cal = ctx.calendar
        wards = ctx.pack.wards
        self._wards = Picker([w.code for w in wards], [w.population for w in wards])
        population = sum(w.population for w in wards)
        self._daily = p.feedback_per_1000_per_day * population / 1000 * p.volume_scale
        self._profile = normalise(interpolate_hourly(FEEDBACK_HOURS))
        self._categories = Picker.of(p.feedback_categories)
        self._urgency = Picker.of(p.feedback_urgency)
        self._channels = Picker.of(p.feedback_channels)
        for picker, allowed in (
            (self._categories, FEEDBACK_CATEGORIES),
            (self._urgency, URGENCIES),
            (self._channels, FEEDBACK_CHANNELS),
        ):
            if set(picker.names) - set(allowed):
                raise ValueError(f"feedback parameters name values outside {allowed}")
        self._due_days = dict(p.feedback_due_working_days)
        self._ratings = (
            Picker(["1", "2", "3", "4", "5"], p.rating_weights_on_time),
            Picker(["1", "2", "3", "4", "5"], p.rating_weights_late),
        )
        self._count = 0
        self._events = 0
        self._id_prefix = f"PA-{ctx.tag[:8]}-"
        self._event_prefix = f"{ctx.tag}-f"

    def items(self) -> Iterator[Item]:
        """Events with start <= event_time < end, in time order."""
        return CaseLoop(self._ctx, self._arrivals, self._schedule, self._emit).items()

    def expected(self, slot: int) -> float:
        """Expected reports submitted in the 15-minute slot starting at `slot`."""
        f = factor_at(self._ctx.effects.feedback_rate, slot)
        return self._daily * self._profile[slot_of_day(slot)] * f

    def _arrivals(self, slot: int) -> list[tuple[int, _Report]]:
        rng = self._rng
        n = poisson(rng, self.expected(slot))
        return [(t, _Report(self._wards.pick(rng))) for t in slot_times(rng, slot, n)]

    def _schedule(self, t: int, r: _Report) -> list[tuple[int, str]]:
        rng, cal, p = self._rng, self._cal, self._ctx.params
        r.category = cast(FeedbackCategory, self._categories.pick(rng))
        r.urgency = urgency = cast(Urgency, self._urgency.pick(rng))
        channel = self._channels.pick(rng)
        if channel == "counter" and not _office_open(cal.is_workday(local_day(t)), t):
            channel = "app"
        r.channel = cast(FeedbackChannel, channel)
        r.submitted = t
        self._count += 1
        r.id = f"{self._id_prefix}{self._count:07d}"
        r.key = r.id.encode()
        urgent = urgency == "urgent"

        # Urgent reports run on the calendar clock; the others on office working time.
        def later(base: int, seconds: float) -> int:
            if urgent:
                return base + int(seconds * (24 * 3600 / WORK_SECONDS))
            return cal.from_work(cal.to_work(base) + int(seconds))

        if urgent:
            r.due = t + p.feedback_urgent_hours * 3600
        else:
            r.due = cal.due_after(t, self._due_days[urgency])
        assigned = later(t, 300 + rng.random() * 4 * 3600)
        r.late = rng.random() < p.feedback_late_share
        rejected = rng.random() < p.feedback_rejected_share
        if rejected:
            close_kind = "rejected"
            closed = later(assigned, 0.5 * WORK_SECONDS + rng.random() * 1.5 * WORK_SECONDS)
            r.late = closed > r.due
        elif r.late:
            close_kind = "resolved"
            overdue = rng.expovariate(1.0 / (2 * WORK_SECONDS))
            closed = later(r.due, 60 + overdue) if urgent else later(r.due - 1, 60 + overdue)
        else:
            close_kind = "resolved"
            span = max(r.due - 1 - assigned, 60)
            closed = min(assigned + int(span * rng.random() ** 0.8), r.due - 1)
            if not urgent:
                # Keep on-time closures inside office hours, before the deadline.
                w_a, w_d = cal.to_work(assigned), cal.to_work(r.due) - 1
                closed = cal.from_work(w_a + int(max(w_d - w_a, 60) * rng.random() ** 0.8))
                closed = min(closed, r.due - 1)
        steps = [(t, "submitted"), (assigned, "assigned"), (closed, close_kind)]
        if rng.random() < p.feedback_rated_share:
            r.rating = int(self._ratings[1 if r.late else 0].pick(rng))
            steps.append((closed + 3600 + int(rng.random() * 3 * 86_400), "rated"))
        return steps

    def _place(self, r: _Report) -> tuple[float, float, str | None]:
        """A point inside the report's ward; the ward code travels only when no GPS is used."""
        pack, rng = self._ctx.pack, self._place_rng
        lon0, lat0, lon1, lat1 = pack.shape(r.ward).bounds
        for _ in range(_LOCATION_TRIES):
            lat = round(lat0 + (lat1 - lat0) * rng.random(), 5)
            lon = round(lon0 + (lon1 - lon0) * rng.random(), 5)
            if pack.ward_at(lat, lon) == r.ward:
                return lat, lon, None if r.channel in GPS_CHANNELS else r.ward
        w = pack.ward(r.ward)
        return w.lat, w.lon, r.ward

    def _emit(self, t: int, kind: str, r: _Report) -> Item:
        place = r.place
        if place is None:
            place = r.place = self._place(r)
        stamps = r.stamps
        if stamps is None:
            stamps = r.stamps = (to_datetime(r.submitted), to_datetime(r.due))
        self._events += 1
        ev = FeedbackEvent(
            event_id=f"{self._event_prefix}{self._events:09x}",
            event_time=to_datetime(t),
            report_id=r.id,
            kind=cast(FeedbackKind, kind),
            category=r.category,
            urgency=r.urgency,
            channel=r.channel,
            lat=place[0],
            lon=place[1],
            submitted_at=stamps[0],
            due_at=stamps[1],
            ward_code=place[2],
            rating=r.rating if kind == "rated" else None,
        )
        return (t, INDEX, TOPIC, r.key, encode_event(ev), r.ward)


def _office_open(workday: bool, t: int) -> bool:
    s = second_of_day(t)
    return workday and (MORNING[0] <= s < MORNING[1] or AFTERNOON[0] <= s < AFTERNOON[1])
