"""Event contracts: the feed registry's contracts, round trips, message shape and its rejections."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from ioc.core.contracts import (
    CONTRACTS,
    REASONS,
    SCHEMAS,
    AirQualityEvent,
    DossierEvent,
    Event,
    FeedbackEvent,
    PaymentEvent,
    Rejected,
    decode_event,
    encode_event,
    feed_of,
    schema_of,
)
from ioc.core.contracts.base import EventBase
from ioc.core.contracts.decode import _contracts_by_feed
from ioc.core.feeds import (
    AIR_QUALITY,
    BY_NAME,
    BY_TOPIC,
    DOSSIERS,
    FEEDBACK,
    FEEDS,
    PAYMENTS,
    Feed,
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


def test_every_registry_feed_has_one_contract_carrying_its_key() -> None:
    assert list(CONTRACTS) == list(FEEDS)
    assert list(SCHEMAS) == [f.schema for f in FEEDS]
    for feed in FEEDS:
        cls = CONTRACTS[feed]
        assert cls.__struct_config__.tag == feed.schema == feed.topic
        assert SCHEMAS[feed.schema] is cls
        assert feed.key_field in cls.__struct_fields__
        assert BY_NAME[feed.name] is feed and BY_TOPIC[feed.topic] is feed
    assert [f.index for f in FEEDS] == list(range(len(FEEDS)))


@pytest.mark.parametrize(
    ("ev", "feed", "key"),
    [
        (dossier(), DOSSIERS, "HL-000001"),
        (payment(), PAYMENTS, "M-1"),
        (feedback(), FEEDBACK, "R-1"),
        (air(), AIR_QUALITY, "ST-1"),
    ],
)
def test_an_event_names_its_feed_and_key(ev: Event, feed: Feed, key: str) -> None:
    assert feed_of(ev) is feed
    assert schema_of(ev) == feed_of(ev).schema
    assert getattr(ev, feed_of(ev).key_field) == key


def test_a_feed_without_a_contract_or_a_contract_without_a_feed_fails_at_import() -> None:
    with pytest.raises(RuntimeError, match=r"feed air_quality: no contract ioc\.air_quality\.v1"):
        _contracts_by_feed((DossierEvent, PaymentEvent, FeedbackEvent))

    class ParkingEvent(EventBase, frozen=True, kw_only=True, tag="ioc.parking.v1"):
        lot_id: str

    every = (DossierEvent, PaymentEvent, FeedbackEvent, AirQualityEvent, ParkingEvent)
    with pytest.raises(RuntimeError, match=r"contracts of no registered feed: ioc\.parking\.v1"):
        _contracts_by_feed(every)


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
