"""Event contracts, value rules: wards, limits, time bounds, sizes, bad values, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ioc.core.contracts import (
    EARLIEST_EVENT_TIME,
    MAX_MESSAGE_BYTES,
    REASONS,
    Event,
    FeedbackEvent,
    Rejected,
    decode_event,
    dossier_outcome,
    encode_event,
)
from tests.unit.test_contracts import (
    ICT,
    NOW,
    WARDS,
    air,
    decode,
    dossier,
    feedback,
    mutated,
    payment,
    reason_of,
)


@pytest.mark.parametrize(
    "ev",
    [
        dossier(ward_code="99999"),
        payment(ward_code=""),
        air(ward_code="06650"),
        feedback(ward_code="12345"),
        feedback(ward_code=None, lat=21.5, lon=107.0),
    ],
)
def test_unknown_ward(ev: Event) -> None:
    assert reason_of(encode_event(ev)) == "unknown_ward"


def test_feedback_ward_is_derived_from_the_location() -> None:
    west = decode(encode_event(feedback(ward_code=None, lat=20.95, lon=107.01)))
    east = decode(encode_event(feedback(ward_code=None, lat=20.95, lon=107.09)))
    assert isinstance(west, FeedbackEvent)
    assert isinstance(east, FeedbackEvent)
    assert (west.ward_code, east.ward_code) == ("06649", "06652")
    # A given ward code wins over the location.
    given = decode(encode_event(feedback(ward_code="06649", lat=20.95, lon=107.09)))
    assert isinstance(given, FeedbackEvent)
    assert given.ward_code == "06649"


@pytest.mark.parametrize(
    "ev",
    [
        payment(amount_vnd=-1),
        dossier(fee_vnd=-50_000),
        air(pm25=-0.1),
        air(pm10=-3.0),
        air(no2=-1.0),
        air(o3=-1.0),
        air(so2=-1.0),
        air(co=-1.0),
    ],
)
def test_negative_value(ev: Event) -> None:
    assert reason_of(encode_event(ev)) == "negative_value"


@pytest.mark.parametrize(
    "ev",
    [
        payment(amount_vnd=5_000_000_001),
        dossier(fee_vnd=10**13),
        air(pm25=1000.01),
        air(pm10=2000.5),
        air(no2=4001.0),
        air(o3=2001.0),
        air(so2=5001.0),
        air(co=200_001.0),
    ],
)
def test_absurd_value(ev: Event) -> None:
    assert reason_of(encode_event(ev)) == "absurd_value"


@pytest.mark.parametrize(
    "ev",
    [
        payment(amount_vnd=5_000_000_000),
        air(pm25=1000.0, pm10=2000.0, no2=4000.0, o3=2000.0, so2=5000.0, co=200_000.0),
        air(pm25=0.0, pm10=0.0, no2=0.0, o3=0.0, so2=0.0, co=0.0),
        dossier(fee_vnd=0),
    ],
)
def test_limits_are_inclusive(ev: Event) -> None:
    assert decode(encode_event(ev)) == ev


def test_future_time_tolerates_five_minutes() -> None:
    assert decode(encode_event(payment(event_time=NOW + timedelta(minutes=5)))) is not None
    late = payment(event_time=NOW + timedelta(minutes=5, seconds=1))
    assert reason_of(encode_event(late)) == "future_time"
    # Same instant written with another offset.
    utc = payment(event_time=(NOW + timedelta(hours=2)).astimezone(UTC))
    assert reason_of(encode_event(utc)) == "future_time"


def too_old(raw: bytes, earliest: datetime = EARLIEST_EVENT_TIME) -> Rejected:
    with pytest.raises(Rejected) as info:
        decode_event(raw, wards=WARDS, now=NOW, earliest=earliest)
    assert info.value.reason == "too_old", info.value.detail
    return info.value


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("0001-01-01T00:00:00+07:00", "0001-01-01T00:00:00+07:00"),
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:00"),
        # The bound's instant written in Vietnam time, one second early.
        ("2000-01-01T06:59:59+07:00", "2000-01-01T06:59:59+07:00"),
    ],
)
def test_reset_clocks_are_too_old(stamp: str, shown: str) -> None:
    rejected = too_old(mutated(payment(), lambda o: o.update(event_time=stamp)))
    # The detail names the event's time and the bound, so an operator can tell which applied.
    assert rejected.detail == (
        f"event_time {shown} is before the earliest accepted time 2000-01-01T00:00:00+00:00"
    )


def test_earliest_bound_is_inclusive_and_injected() -> None:
    assert datetime(2000, 1, 1, tzinfo=UTC) == EARLIEST_EVENT_TIME
    at_bound = payment(event_time=EARLIEST_EVENT_TIME.astimezone(ICT))
    assert decode(encode_event(at_bound)) == at_bound
    epoch = payment(event_time=datetime(1970, 1, 1, tzinfo=UTC))
    assert too_old(encode_event(epoch)).detail.startswith("event_time 1970-01-01T00:00:00+00:00")
    # A deployment holding older history passes its own bound (IOC_EARLIEST_EVENT_TIME).
    older = datetime(1960, 1, 1, tzinfo=UTC)
    assert decode_event(encode_event(epoch), wards=WARDS, now=NOW, earliest=older) == epoch
    later = datetime(2025, 1, 1, tzinfo=ICT)
    last_year = payment(event_time=datetime(2024, 12, 31, tzinfo=ICT))
    assert "2025-01-01T00:00:00+07:00" in too_old(encode_event(last_year), later).detail


@pytest.mark.parametrize(
    ("ev", "field"),
    [
        (dossier(received_at=datetime(1970, 1, 1, tzinfo=UTC)), "received_at"),
        (feedback(submitted_at=datetime(1, 1, 1, tzinfo=UTC)), "submitted_at"),
    ],
)
def test_a_case_begun_before_the_bound_is_too_old(ev: Event, field: str) -> None:
    assert too_old(encode_event(ev)).detail.startswith(f"{field} ")


def test_future_and_past_bounds_each_name_their_reason() -> None:
    assert REASONS.index("too_old") == REASONS.index("future_time") + 1
    assert reason_of(encode_event(payment(event_time=NOW + timedelta(days=1)))) == "future_time"
    # Dated before the bound and otherwise bad too: the date is the first problem reported.
    old_and_negative = payment(event_time=datetime(1999, 1, 1, tzinfo=UTC), amount_vnd=-5)
    assert too_old(encode_event(old_and_negative)).reason == "too_old"


def test_oversized_is_checked_before_parsing() -> None:
    raw = encode_event(payment())
    padded = raw + b" " * (MAX_MESSAGE_BYTES - len(raw))
    assert decode(padded) == payment()
    assert reason_of(padded + b" ") == "oversized"
    assert reason_of(b"{" * (MAX_MESSAGE_BYTES + 1)) == "oversized"


@pytest.mark.parametrize(
    "raw",
    [
        mutated(payment(), lambda o: o.update(event_time="2025-03-10T09:29:00")),
        mutated(dossier(), lambda o: o.update(due_at="2025-03-15T17:00:00")),
        encode_event(payment(amount_vnd=0)),
        encode_event(payment(event_id="")),
        encode_event(payment(event_id="x" * 65)),
        encode_event(payment(merchant_id="")),
        encode_event(dossier(due_at=NOW - timedelta(days=1))),
        encode_event(dossier(kind="processing", e_signed=True)),
        encode_event(feedback(kind="rated", rating=6)),
        encode_event(feedback(kind="rated", rating=0)),
        encode_event(feedback(kind="resolved", rating=4)),
        encode_event(feedback(lat=95.0)),
        encode_event(feedback(due_at=NOW - timedelta(days=2))),
        encode_event(air(period_minutes=0)),
        encode_event(air(period_minutes=61)),
    ],
)
def test_bad_value(raw: bytes) -> None:
    assert reason_of(raw) == "bad_value"


def test_rated_needs_a_rating() -> None:
    assert reason_of(encode_event(feedback(kind="rated"))) == "missing_field"
    ok = decode(encode_event(feedback(kind="rated", rating=5)))
    assert isinstance(ok, FeedbackEvent)
    assert ok.rating == 5


def test_event_id_limit_is_inclusive() -> None:
    assert decode(encode_event(payment(event_id="x" * 64))) == payment(event_id="x" * 64)


def test_e_signed_allowed_on_results() -> None:
    for kind in ("resolved", "returned"):
        ev = dossier(kind=kind, e_signed=True)
        assert decode(encode_event(ev)) == ev


def test_rejected_knows_only_the_agreed_reasons() -> None:
    assert len(set(REASONS)) == 13
    with pytest.raises(ValueError, match="unknown rejection reason"):
        Rejected("bad_json", "typo")
    err = Rejected("not_json", "truncated")
    assert (err.reason, err.detail, str(err)) == ("not_json", "truncated", "not_json: truncated")


DUE = datetime(2025, 3, 14, 17, 0, tzinfo=ICT)


@pytest.mark.parametrize(
    ("resolved_at", "expected"),
    [
        (datetime(2025, 3, 13, 23, 59, tzinfo=ICT), "early"),
        (datetime(2025, 3, 14, 0, 0, tzinfo=ICT), "on_time"),
        (datetime(2025, 3, 14, 17, 0, tzinfo=ICT), "on_time"),
        (datetime(2025, 3, 14, 17, 0, 1, tzinfo=ICT), "late"),
        (datetime(2025, 3, 20, 8, 0, tzinfo=ICT), "late"),
        # 16:59 UTC on the 13th is 23:59 on the 13th in Vietnam: early.
        (datetime(2025, 3, 13, 16, 59, tzinfo=UTC), "early"),
        # 17:30 UTC on the 13th is already the 14th in Vietnam: on time, not early.
        (datetime(2025, 3, 13, 17, 30, tzinfo=UTC), "on_time"),
    ],
)
def test_dossier_outcome(resolved_at: datetime, expected: str) -> None:
    assert dossier_outcome(resolved_at, DUE) == expected
