"""Simulator step for reliability tests: a seeded stream of messages the consumers must reject.

Every kind of rejection in ioc.core.contracts.REASONS except `bad_value` is produced, several ways,
each message labelled with the reason a consumer must record. Impossible transitions are
sequences of events that are valid one by one: their setup events are labelled ACCEPTED ("")
and only the offending event carries `impossible_transition`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import msgspec

from ioc.core.contracts import (
    MAX_MESSAGE_BYTES,
    AirQualityEvent,
    DossierEvent,
    DossierKind,
    Event,
    FeedbackEvent,
    FeedbackKind,
    PaymentEvent,
    WardIndex,
    feed_of,
)
from ioc.core.feeds import AIR_QUALITY, DOSSIERS, FEEDBACK, PAYMENTS

ACCEPTED: Final = ""
# A point in the Gulf of Guinea: outside every ward of any Vietnamese city pack.
NOWHERE: Final = (0.0, 0.0)


@dataclass(frozen=True)
class PoisonMessage:
    """One Kafka message: base topic, key, raw value, and the reason it must be rejected for."""

    topic: str
    key: bytes
    value: bytes
    expected_reason: str


class _Located(Protocol):
    @property
    def lat(self) -> float: ...

    @property
    def lon(self) -> float: ...


class PoisonWards(WardIndex, Protocol):
    """A WardIndex that can also list its codes and place a ward (CityPack satisfies it)."""

    @property
    def codes(self) -> frozenset[str]: ...

    def ward(self, code: str) -> _Located: ...


Mutation = Callable[[dict[str, Any]], Any]


class _Builder:
    """Valid events with deterministic ids and values, and the messages derived from them."""

    def __init__(self, seed: int, now: datetime, wards: PoisonWards) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.seed = seed
        self.now = now
        self.wards = wards
        self.codes = sorted(wards.codes)
        if not self.codes:
            raise ValueError("the ward index has no wards")
        self.count = 0
        self.out: list[PoisonMessage] = []

    def next_id(self, prefix: str) -> str:
        self.count += 1
        return f"poison-{self.seed}-{prefix}{self.count:04d}"

    def ward_code(self) -> str:
        return self.rng.choice(self.codes)

    def unknown_code(self) -> str:
        while True:
            code = f"{self.rng.randrange(100000):05d}"
            if code not in self.wards:
                return code

    def past(self, max_minutes: int = 30) -> datetime:
        return self.now - timedelta(minutes=self.rng.randint(2, max_minutes))

    def dossier(
        self, kind: DossierKind = "received", *, dossier_id: str | None = None
    ) -> DossierEvent:
        at = self.past()
        received = at - timedelta(hours=self.rng.randint(1, 72))
        return DossierEvent(
            event_id=self.next_id("e"),
            event_time=at,
            dossier_id=dossier_id or self.next_id("D"),
            ward_code=self.ward_code(),
            kind=kind,
            procedure_field=self.rng.choice(("land", "civil_status", "certification")),
            channel=self.rng.choice(("counter", "online", "postal")),
            service_level=self.rng.choice(("full_online", "partial_online", "offline")),
            received_at=received,
            due_at=received + timedelta(days=self.rng.randint(3, 15)),
            digitized=self.rng.random() < 0.8,
            e_signed=False,
            fee_vnd=self.rng.choice((0, 20_000, 50_000, 100_000)),
        )

    def payment(self) -> PaymentEvent:
        return PaymentEvent(
            event_id=self.next_id("e"),
            event_time=self.past(),
            payment_id=self.next_id("P"),
            merchant_id=self.next_id("M"),
            ward_code=self.ward_code(),
            merchant_type=self.rng.choice(("market_stall", "shop", "tax")),
            channel=self.rng.choice(("vietqr", "pos_card", "cash")),
            amount_vnd=self.rng.randrange(10_000, 2_000_000, 1_000),
            status="succeeded",
        )

    def feedback(
        self, kind: FeedbackKind = "submitted", *, report_id: str | None = None
    ) -> FeedbackEvent:
        code = self.ward_code()
        place = self.wards.ward(code)
        at = self.past()
        submitted = at - timedelta(hours=self.rng.randint(1, 48))
        return FeedbackEvent(
            event_id=self.next_id("e"),
            event_time=at,
            report_id=report_id or self.next_id("R"),
            kind=kind,
            category=self.rng.choice(("environment", "traffic", "urban_order")),
            urgency=self.rng.choice(("urgent", "complex", "normal")),
            channel=self.rng.choice(("app", "hotline", "zalo")),
            lat=place.lat,
            lon=place.lon,
            submitted_at=submitted,
            due_at=submitted + timedelta(days=self.rng.randint(1, 10)),
            ward_code=code,
            rating=self.rng.randint(1, 5) if kind == "rated" else None,
        )

    def air_quality(self) -> AirQualityEvent:
        return AirQualityEvent(
            event_id=self.next_id("e"),
            event_time=self.past(),
            station_id=self.next_id("S"),
            ward_code=self.ward_code(),
            period_minutes=15,
            pm25=round(self.rng.uniform(5, 80), 1),
            pm10=round(self.rng.uniform(10, 150), 1),
            no2=round(self.rng.uniform(5, 90), 1),
            o3=round(self.rng.uniform(10, 120), 1),
            so2=round(self.rng.uniform(2, 40), 1),
            co=round(self.rng.uniform(300, 3000), 0),
        )

    def emit(
        self, ev: Event, reason: str, mutate: Mutation | None = None, *, topic: str = ""
    ) -> None:
        """Add `ev`, after an optional in-place change of its JSON object, as one message."""
        obj: dict[str, Any] = msgspec.to_builtins(ev)
        if mutate is not None:
            mutate(obj)
        feed = feed_of(ev)
        key = str(getattr(ev, feed.key_field)).encode()
        self.raw(topic or feed.topic, key, msgspec.json.encode(obj), reason)

    def raw(self, topic: str, key: bytes, value: bytes, reason: str) -> None:
        self.out.append(PoisonMessage(topic, key, value, reason))

    def anonymous_key(self) -> bytes:
        return self.next_id("k").encode()


def _set(**changes: Any) -> Mutation:
    return lambda obj: obj.update(changes)


def _drop(name: str) -> Mutation:
    return lambda obj: obj.pop(name)


def poison_messages(seed: int, now: datetime, wards: PoisonWards) -> list[PoisonMessage]:
    """Every rejected kind, several ways; same seed, now and wards give the same bytes."""
    b = _Builder(seed, now, wards)
    _not_json(b)
    _unknown_schema(b)
    _field_shape(b)
    _values(b)
    _oversized(b)
    _impossible_transitions(b)
    # Last, so that the messages before it keep the bytes they had before it was added
    # (the library's recordings hold poison batches).
    _too_old(b)
    return b.out


def _not_json(b: _Builder) -> None:
    valid = msgspec.json.encode(msgspec.to_builtins(b.payment()))
    b.raw(PAYMENTS.topic, b.anonymous_key(), valid[: len(valid) // 2], "not_json")
    b.raw(PAYMENTS.topic, b.anonymous_key(), b"\xff\xfe" + b.rng.randbytes(30), "not_json")
    b.raw(AIR_QUALITY.topic, b.anonymous_key(), b"", "not_json")
    # Nesting deep enough to exhaust a recursive parser, well under the size limit.
    depth = 20_000 + b.rng.randrange(1_000)
    head = f'{{"schema":"{FEEDBACK.schema}","event_id":'.encode()
    b.raw(FEEDBACK.topic, b.anonymous_key(), head + b"[" * depth + b"]" * depth + b"}", "not_json")
    # Latin-1 text where UTF-8 is required.
    latin = f'{{"schema":"{FEEDBACK.schema}","report_id":"Hạ Long {b.seed}"}}'
    b.raw(
        FEEDBACK.topic,
        b.anonymous_key(),
        latin.encode("utf-8").replace(b"\xe1\xba\xa1", b"\xe0"),
        "not_json",
    )
    ward_text = f"ward={b.ward_code()};pm25=12".encode()
    b.raw(AIR_QUALITY.topic, b.anonymous_key(), ward_text, "not_json")
    b.raw(
        DOSSIERS.topic,
        b.anonymous_key(),
        msgspec.json.encode(msgspec.to_builtins(b.dossier())) + b"}",
        "not_json",
    )


def _unknown_schema(b: _Builder) -> None:
    b.emit(b.payment(), "unknown_schema", _set(schema="ioc.parking.v1"))
    b.emit(b.payment(), "unknown_schema", _set(schema="ioc.payments.v2"))
    b.emit(b.dossier(), "unknown_schema", _drop("schema"))
    b.emit(b.dossier(), "unknown_schema", topic=PAYMENTS.topic)  # a valid dossier, wrong topic
    fb = msgspec.to_builtins(b.feedback())
    b.raw(
        FEEDBACK.topic, fb[FEEDBACK.key_field].encode(), msgspec.json.encode([fb]), "unknown_schema"
    )


def _field_shape(b: _Builder) -> None:
    b.emit(b.dossier(), "missing_field", _drop("ward_code"))
    b.emit(b.payment(), "missing_field", _drop("amount_vnd"))
    b.emit(b.feedback(), "missing_field", _drop("event_time"))
    b.emit(b.air_quality(), "missing_field", _drop("station_id"))
    b.emit(b.feedback("rated"), "missing_field", _set(rating=None))

    b.emit(b.payment(), "wrong_type", lambda o: o.update(amount_vnd=str(o["amount_vnd"])))
    b.emit(b.dossier(), "wrong_type", _set(digitized="yes"))
    b.emit(b.feedback(), "wrong_type", lambda o: o.update(lat=str(o["lat"])))
    b.emit(b.air_quality(), "wrong_type", lambda o: o.update(pm25=str(o["pm25"])))
    b.emit(b.dossier(), "wrong_type", _set(event_time=int(b.now.timestamp())))

    b.emit(b.payment(), "unknown_enum", _set(channel="momo"))
    b.emit(b.dossier(), "unknown_enum", _set(kind="archived"))
    b.emit(b.feedback(), "unknown_enum", _set(category="noise"))
    b.emit(b.dossier(), "unknown_enum", _set(procedure_field="tax"))


def _values(b: _Builder) -> None:
    b.emit(b.dossier(), "unknown_ward", _set(ward_code=b.unknown_code()))
    b.emit(b.payment(), "unknown_ward", _set(ward_code=b.unknown_code()))
    b.emit(b.air_quality(), "unknown_ward", _set(ward_code=b.unknown_code()))
    lat, lon = NOWHERE
    b.emit(b.feedback(), "unknown_ward", _set(ward_code=None, lat=lat, lon=lon))

    b.emit(b.payment(), "negative_value", _set(amount_vnd=-b.rng.randrange(1_000, 500_000, 1_000)))
    b.emit(b.dossier(), "negative_value", _set(fee_vnd=-1))
    b.emit(b.air_quality(), "negative_value", _set(pm25=-round(b.rng.uniform(0.1, 9), 1)))
    b.emit(b.air_quality(), "negative_value", _set(co=-0.5))

    b.emit(b.air_quality(), "absurd_value", _set(pm25=5000.0))
    b.emit(b.air_quality(), "absurd_value", _set(co=1.0e7))
    b.emit(b.payment(), "absurd_value", _set(amount_vnd=10**12))

    future = b.now + timedelta(days=1)
    b.emit(b.payment(), "future_time", _set(event_time=future.isoformat()))
    just_over = b.now + timedelta(minutes=6)
    b.emit(b.air_quality(), "future_time", _set(event_time=just_over.isoformat()))
    next_year = b.now + timedelta(days=365)
    b.emit(b.dossier(), "future_time", _set(event_time=next_year.isoformat()))


def _oversized(b: _Builder) -> None:
    # Both are valid JSON events once parsed; only their size condemns them.
    b.emit(b.feedback(), "oversized", _set(note="x" * MAX_MESSAGE_BYTES))
    reading = msgspec.json.encode(msgspec.to_builtins(b.air_quality()))
    padded = reading + b" " * (MAX_MESSAGE_BYTES + 1 - len(reading))
    b.raw(AIR_QUALITY.topic, b.anonymous_key(), padded, "oversized")


def _impossible_transitions(b: _Builder) -> None:
    """Per-case sequences in event_time order; only the last event of each breaks the rules."""
    t0 = b.now - timedelta(minutes=40)

    report = b.feedback("submitted")
    report = msgspec.structs.replace(report, event_time=t0)
    b.emit(report, ACCEPTED)
    resolved_report = msgspec.structs.replace(
        report, event_id=b.next_id("e"), kind="resolved", event_time=t0 + timedelta(minutes=10)
    )
    b.emit(resolved_report, ACCEPTED)
    # Rated before the report was resolved: a citizen rates how a report was closed, so a
    # rating timed before the closing can never fit, whatever else arrives later.
    rated = msgspec.structs.replace(
        report,
        event_id=b.next_id("e"),
        kind="rated",
        rating=1,
        event_time=t0 + timedelta(minutes=5),
    )
    b.emit(rated, "impossible_transition")

    case = b.dossier("received")
    case = msgspec.structs.replace(case, event_time=t0, received_at=t0)
    b.emit(case, ACCEPTED)
    resolved = msgspec.structs.replace(
        case, event_id=b.next_id("e"), kind="resolved", event_time=t0 + timedelta(minutes=10)
    )
    b.emit(resolved, ACCEPTED)
    # Back to processing after the result was produced.
    reopened = msgspec.structs.replace(
        case, event_id=b.next_id("e"), kind="processing", event_time=t0 + timedelta(minutes=20)
    )
    b.emit(reopened, "impossible_transition")

    withdrawn = msgspec.structs.replace(
        b.dossier("withdrawn"), event_time=t0 + timedelta(minutes=1)
    )
    b.emit(withdrawn, ACCEPTED)
    # A result handed back for a dossier the applicant withdrew.
    returned = msgspec.structs.replace(
        withdrawn, event_id=b.next_id("e"), kind="returned", event_time=t0 + timedelta(minutes=30)
    )
    b.emit(returned, "impossible_transition")


def _too_old(b: _Builder) -> None:
    """Devices whose clock was reset: year 1 (local time) and the Unix epoch."""
    b.emit(b.payment(), "too_old", _set(event_time="0001-01-01T00:00:00+07:00"))
    b.emit(b.air_quality(), "too_old", _set(event_time="1970-01-01T00:00:00Z"))
    # A case opened by such a device: the event is recent, the case's start is not.
    b.emit(b.dossier(), "too_old", _set(received_at="1970-01-01T07:00:00+07:00"))
