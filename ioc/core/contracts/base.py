"""Contract step of the data path (simulator -> topic -> consumer): what every event shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Protocol

import msgspec

REASONS: Final[tuple[str, ...]] = (
    "not_json",
    "unknown_schema",
    "missing_field",
    "wrong_type",
    "unknown_enum",
    "unknown_ward",
    "negative_value",
    "absurd_value",
    "future_time",
    "too_old",
    "oversized",
    "bad_value",
    "impossible_transition",
)

MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_EVENT_ID_CHARS: Final = 64
# Clocks of producers drift; an event a little ahead of the consumer's clock is still plausible.
FUTURE_TOLERANCE: Final = timedelta(minutes=5)
# A device whose clock was reset stamps 0001-01-01 or the Unix epoch; stored, one such event
# would stretch every time range (the timeline spans the rollups) over centuries. No deployment
# holds history from before 2000, and replayed or backfilled past periods are far later; a
# deployment with older history passes its own bound to decode_event (IOC_EARLIEST_EVENT_TIME).
EARLIEST_EVENT_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AMOUNT_VND: Final = 5_000_000_000

# msgspec enforces the offset while parsing, so a naive timestamp never reaches Python code.
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class Rejected(Exception):  # noqa: N818 - the agreed interface name
    """An event the consumer must not accept; `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class WardIndex(Protocol):
    """What validation needs from a city pack: membership of ward codes and point-in-ward."""

    def __contains__(self, code: str) -> bool: ...

    def ward_at(self, lat: float, lon: float) -> str | None: ...


class EventBase(msgspec.Struct, frozen=True, kw_only=True, tag_field="schema"):
    """Fields first in every event; the `schema` tag is added by each concrete contract."""

    event_id: str
    event_time: AwareDatetime


def check_id(name: str, value: str, limit: int = MAX_EVENT_ID_CHARS) -> None:
    """Identifiers are non-empty and short enough to be keys and primary keys."""
    if not value or len(value) > limit:
        raise Rejected("bad_value", f"{name} must be 1..{limit} characters, got {len(value)}")


def check_ward(code: str, wards: WardIndex) -> None:
    """A ward code must name a ward of the loaded city pack."""
    if code not in wards:
        raise Rejected("unknown_ward", f"ward_code {code!r} is not in the city pack")


def check_order(first: str, a: datetime, then: str, b: datetime) -> None:
    """Two timestamps of one case must not run backwards (e.g. due before received)."""
    if b < a:
        raise Rejected("bad_value", f"{then} {b.isoformat()} is before {first} {a.isoformat()}")
