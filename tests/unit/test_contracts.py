"""Event contracts: round trips, each rejection reason, ward derivation, outcomes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from ioc.core.contracts import (
    EARLIEST_EVENT_TIME,
    MAX_MESSAGE_BYTES,
    REASONS,
    SCHEMAS,
    AirQualityEvent,
    DossierEvent,
    Event,
    FeedbackEvent,
    PaymentEvent,
    Rejected,
    decode_event,
    dossier_outcome,
    encode_event,
    schema_of,
)

ICT = timezone(timedelta(hours=7))
NOW = datetime(2025, 3, 10, 9, 30, tzinfo=ICT)


@dataclass(frozen=True)
class FakeWard:
    lat: float
    lon: float


class FakeWards:
    """Two square wards side by side: 06649 west of lon 107.05, 06652 east of it."""

    codes = frozenset({"06649", "06652"})

    def __contains__(self, code: str) -> bool:
        return code in self.codes

    def ward_at(self, lat: float, lon: float) -> str | None:
        if not 20.9 <= lat <= 21.0 or not 107.0 <= lon <= 107.1:
            return None
        return "06649" if lon < 107.05 else "06652"

    def ward(self, code: str) -> FakeWard:
        return {"06649": FakeWard(20.95, 107.02), "06652": FakeWard(20.95, 107.08)}[code]


WARDS = FakeWards()


def dossier(**changes: Any) -> DossierEvent:
    base = DossierEvent(
        event_id="ev-d-1",
        event_time=NOW - timedelta(minutes=3),
        dossier_id="HL-000001",
        ward_code="06649",
        kind="received",
        procedure_field="land",
        channel="online",
        service_level="full_online",
        received_at=NOW - timedelta(minutes=3),
        due_at=NOW + timedelta(days=5),
        digitized=True,
        e_signed=False,
        fee_vnd=50_000,
    )
    return msgspec.structs.replace(base, **changes)


def payment(**changes: Any) -> PaymentEvent:
    base = PaymentEvent(
        event_id="ev-p-1",
        event_time=NOW - timedelta(seconds=10),
        payment_id="PAY-1",
        merchant_id="M-1",
        ward_code="06652",
        merchant_type="public_service_fee",
        channel="vietqr",
        amount_vnd=120_000,
        status="succeeded",
    )
    return msgspec.structs.replace(base, **changes)


def feedback(**changes: Any) -> FeedbackEvent:
    base = FeedbackEvent(
        event_id="ev-f-1",
        event_time=NOW - timedelta(minutes=1),
        report_id="R-1",
        kind="submitted",
        category="environment",
        urgency="normal",
        channel="app",
        lat=20.95,
        lon=107.08,
        submitted_at=NOW - timedelta(minutes=1),
        due_at=NOW + timedelta(days=3),
        ward_code="06652",
    )
    return msgspec.structs.replace(base, **changes)


def air(**changes: Any) -> AirQualityEvent:
    base = AirQualityEvent(
        event_id="ev-a-1",
        event_time=NOW,
        station_id="ST-1",
        ward_code="06649",
        period_minutes=15,
        pm25=35.5,
        pm10=60.0,
        no2=20.0,
        o3=None,
        so2=4.0,
        co=800.0,
    )
    return msgspec.structs.replace(base, **changes)


def decode(raw: bytes, expected: str | None = None) -> Event:
    return decode_event(raw, wards=WARDS, now=NOW, expected_schema=expected)


def reason_of(raw: bytes, expected: str | None = None) -> str:
    with pytest.raises(Rejected) as info:
        decode(raw, expected)
    return info.value.reason


def mutated(ev: Event, change: Callable[[dict[str, Any]], Any]) -> bytes:
    obj = json.loads(encode_event(ev))
    change(obj)
    return json.dumps(obj).encode()


@pytest.mark.parametrize("ev", [dossier(), payment(), feedback(), air()])
def test_round_trip(ev: Event) -> None:
    raw = encode_event(ev)
    assert decode(raw, schema_of(ev)) == ev
    obj = json.loads(raw)
    assert next(iter(obj)) == "schema"
    assert obj["schema"] == schema_of(ev)
    assert obj["event_time"].endswith("+07:00")


def test_schemas_are_the_topics() -> None:
    assert set(SCHEMAS) == {
        "ioc.dossiers.v1",
        "ioc.payments.v1",
        "ioc.feedback.v1",
        "ioc.air_quality.v1",
    }
    assert SCHEMAS["ioc.payments.v1"] is PaymentEvent


def test_encoding_is_deterministic_and_compact() -> None:
    assert encode_event(payment()) == encode_event(payment())
    assert b", " not in encode_event(payment())
    assert list(json.loads(encode_event(payment()))) == [
        "schema",
        "event_id",
        "event_time",
        "payment_id",
        "merchant_id",
        "ward_code",
        "merchant_type",
        "channel",
        "amount_vnd",
        "status",
    ]


def test_other_offsets_are_accepted() -> None:
    ev = payment(event_time=datetime(2025, 3, 10, 2, 0, tzinfo=UTC))
    assert decode(encode_event(ev)).event_time == datetime(2025, 3, 10, 9, 0, tzinfo=ICT)


def test_unknown_extra_fields_are_ignored() -> None:
    raw = mutated(payment(), lambda o: o.update(note="added by a newer producer"))
    assert decode(raw) == payment()


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b"\xff\xfe\x00", b'{"schema": "ioc.payments.v1"}}', b"[1, 2"],
)
def test_not_json(raw: bytes) -> None:
    assert reason_of(raw) == "not_json"


@pytest.mark.parametrize(
    "raw",
    [
        mutated(payment(), lambda o: o.update(schema="ioc.parking.v1")),
        mutated(payment(), lambda o: o.pop("schema")),
        mutated(payment(), lambda o: o.update(schema=7)),
        b"[]",
        b'"ioc.payments.v1"',
        b"42",
    ],
)
def test_unknown_schema(raw: bytes) -> None:
    assert reason_of(raw) == "unknown_schema"


def test_schema_must_match_the_topic() -> None:
    raw = encode_event(dossier())
    assert decode(raw, "ioc.dossiers.v1") == dossier()
    assert reason_of(raw, "ioc.payments.v1") == "unknown_schema"
    broken = mutated(dossier(), lambda o: o.pop("fee_vnd"))
    # The wrong topic is named before the missing field: the message is not for this consumer.
    assert reason_of(broken, "ioc.payments.v1") == "unknown_schema"
    assert reason_of(broken, "ioc.dossiers.v1") == "missing_field"


@pytest.mark.parametrize(
    ("ev", "field"),
    [
        (dossier(), "ward_code"),
        (dossier(), "due_at"),
        (payment(), "amount_vnd"),
        (payment(), "event_id"),
        (feedback(), "lat"),
        (air(), "station_id"),
        (air(), "event_time"),
    ],
)
def test_missing_field(ev: Event, field: str) -> None:
    assert reason_of(mutated(ev, lambda o: o.pop(field))) == "missing_field"


def test_optional_fields_may_be_absent() -> None:
    raw = mutated(air(), lambda o: [o.pop(p) for p in ("pm25", "o3", "co")])
    ev = decode(raw)
    assert isinstance(ev, AirQualityEvent)
    assert (ev.pm25, ev.o3, ev.co, ev.pm10) == (None, None, None, 60.0)


@pytest.mark.parametrize(
    ("ev", "field", "value"),
    [
        (payment(), "amount_vnd", "120000"),
        (payment(), "amount_vnd", 120000.5),
        (payment(), "amount_vnd", True),
        (dossier(), "digitized", "yes"),
        (dossier(), "kind", None),
        (dossier(), "event_time", 1741573800),
        (dossier(), "due_at", "next tuesday"),
        (feedback(), "lat", "20.95"),
        (feedback(), "rating", "5"),
        (air(), "pm25", [35.5]),
        (air(), "period_minutes", 15.5),
        (payment(), "event_id", 12),
    ],
)
def test_wrong_type(ev: Event, field: str, value: object) -> None:
    assert reason_of(mutated(ev, lambda o: o.update({field: value}))) == "wrong_type"


@pytest.mark.parametrize(
    ("ev", "field", "value"),
    [
        (payment(), "channel", "momo"),
        (payment(), "status", "SUCCEEDED"),
        (payment(), "merchant_type", "bank"),
        (dossier(), "kind", "archived"),
        (dossier(), "procedure_field", "tax"),
        (dossier(), "channel", "fax"),
        (dossier(), "service_level", "level_4"),
        (feedback(), "kind", "closed"),
        (feedback(), "category", "noise"),
        (feedback(), "urgency", "high"),
        (feedback(), "channel", "email"),
    ],
)
def test_unknown_enum(ev: Event, field: str, value: str) -> None:
    assert reason_of(mutated(ev, lambda o: o.update({field: value}))) == "unknown_enum"


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


BEYOND_FLOAT = mutated(air(), lambda o: o.update(pm25="BIG")).replace(b'"BIG"', b"1e400")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 60_000, "not_json"),
        (b'{"schema":"ioc.payments.v1","x":' + b"[" * 30_000 + b"]" * 30_000 + b"}", "not_json"),
        ('{"schema":"ioc.payments.v1","event_id":"é"}'.encode("latin-1"), "not_json"),
        (BEYOND_FLOAT, "absurd_value"),
    ],
)
def test_hostile_inputs_are_rejected_not_raised(raw: bytes, reason: str) -> None:
    assert reason_of(raw) == reason


def test_random_corruption_only_ever_rejects() -> None:
    import random

    rng = random.Random(1459)
    base = bytearray(encode_event(feedback(ward_code=None, lat=20.95, lon=107.01)))
    outcomes: set[str] = set()
    for _ in range(3_000):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(raw))
            op = rng.random()
            if op < 0.4:
                raw[pos] = rng.randrange(256)
            elif op < 0.7:
                del raw[pos]
            else:
                raw.insert(pos, rng.randrange(256))
        try:
            decode(bytes(raw))
            outcomes.add("accepted")
        except Rejected as exc:
            outcomes.add(exc.reason)
    assert {"not_json", "missing_field", "accepted"} <= outcomes
    assert outcomes <= set(REASONS) | {"accepted"}
