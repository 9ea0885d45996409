"""Contract step of the feedback feed (ioc.feedback.v1): one citizen report (phản ánh) event."""

from __future__ import annotations

import math
from typing import Final, Literal, get_args

import msgspec

from ioc.core.contracts.base import (
    AwareDatetime,
    EventBase,
    Rejected,
    WardIndex,
    check_id,
    check_order,
)
from ioc.core.feeds import FEEDBACK

FeedbackKind = Literal["submitted", "assigned", "resolved", "rejected", "rated"]
FeedbackCategory = Literal[
    "environment", "traffic", "urban_order", "utilities", "security", "public_services", "other"
]
Urgency = Literal["urgent", "complex", "normal"]
FeedbackChannel = Literal["app", "hotline", "web", "zalo", "counter"]

FEEDBACK_KINDS: Final[tuple[str, ...]] = get_args(FeedbackKind)
FEEDBACK_CATEGORIES: Final[tuple[str, ...]] = get_args(FeedbackCategory)
URGENCIES: Final[tuple[str, ...]] = get_args(Urgency)
FEEDBACK_CHANNELS: Final[tuple[str, ...]] = get_args(FeedbackChannel)


class FeedbackEvent(EventBase, frozen=True, kw_only=True, tag=FEEDBACK.schema):
    """A step in the life of one citizen report; keyed by report_id.

    ward_code may be absent: decoding then derives it from (lat, lon) through the city pack.
    """

    report_id: str
    kind: FeedbackKind
    category: FeedbackCategory
    urgency: Urgency
    channel: FeedbackChannel
    lat: float
    lon: float
    submitted_at: AwareDatetime
    due_at: AwareDatetime
    ward_code: str | None = None
    rating: int | None = None


def check_feedback(ev: FeedbackEvent, wards: WardIndex) -> FeedbackEvent:
    """Value rules of a single feedback event; returns it with ward_code filled in."""
    check_id("report_id", ev.report_id)
    if not (math.isfinite(ev.lat) and math.isfinite(ev.lon)) or not (
        -90.0 <= ev.lat <= 90.0 and -180.0 <= ev.lon <= 180.0
    ):
        raise Rejected("bad_value", f"location ({ev.lat}, {ev.lon}) is not a point on Earth")
    check_order("submitted_at", ev.submitted_at, "due_at", ev.due_at)
    if ev.kind == "rated":
        if ev.rating is None:
            raise Rejected("missing_field", "a 'rated' event needs a rating")
        if not 1 <= ev.rating <= 5:
            raise Rejected("bad_value", f"rating {ev.rating} is outside 1..5")
    elif ev.rating is not None:
        raise Rejected("bad_value", f"rating given on a {ev.kind!r} event")
    if ev.ward_code is not None:
        if ev.ward_code not in wards:
            raise Rejected("unknown_ward", f"ward_code {ev.ward_code!r} is not in the city pack")
        return ev
    code = wards.ward_at(ev.lat, ev.lon)
    if code is None:
        raise Rejected("unknown_ward", f"location ({ev.lat}, {ev.lon}) is outside every ward")
    return msgspec.structs.replace(ev, ward_code=code)
