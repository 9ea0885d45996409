"""Contract step between topic and consumer: encode events to bytes and decode+validate them."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypeAlias

import msgspec

from ioc.core.contracts.air_quality import AirQualityEvent, check_air_quality
from ioc.core.contracts.base import (
    EARLIEST_EVENT_TIME,
    FUTURE_TOLERANCE,
    MAX_MESSAGE_BYTES,
    EventBase,
    Rejected,
    WardIndex,
    check_id,
)
from ioc.core.contracts.dossiers import DossierEvent, check_dossier
from ioc.core.contracts.feedback import FeedbackEvent, check_feedback
from ioc.core.contracts.payments import PaymentEvent, check_payment
from ioc.core.feeds import FEEDS, Feed

Event: TypeAlias = DossierEvent | PaymentEvent | FeedbackEvent | AirQualityEvent


def _contracts_by_feed(classes: tuple[type[EventBase], ...]) -> dict[Feed, type[EventBase]]:
    """Each registry feed's contract, matched by schema tag; RuntimeError on any mismatch.

    Checked at import so that a feed added to the registry without its contract (or a contract
    whose message key field is missing) fails every process at once, not one consumer at run time.
    """
    by_tag = {str(cls.__struct_config__.tag): cls for cls in classes}
    out: dict[Feed, type[EventBase]] = {}
    for feed in FEEDS:
        cls = by_tag.pop(feed.schema, None)
        if cls is None or feed.key_field not in cls.__struct_fields__:
            raise RuntimeError(
                f"feed {feed.name}: no contract {feed.schema} with key field {feed.key_field}"
            )
        out[feed] = cls
    if by_tag:
        raise RuntimeError(f"contracts of no registered feed: {', '.join(sorted(by_tag))}")
    return out


CONTRACTS: Final[Mapping[Feed, type[EventBase]]] = MappingProxyType(
    _contracts_by_feed((DossierEvent, PaymentEvent, FeedbackEvent, AirQualityEvent))
)
SCHEMAS: Final[Mapping[str, type[EventBase]]] = MappingProxyType(
    {feed.schema: cls for feed, cls in CONTRACTS.items()}
)
_FEED_OF: Final[dict[type[EventBase], Feed]] = {cls: feed for feed, cls in CONTRACTS.items()}
_SCHEMA_OF: Final[dict[type[EventBase], str]] = {cls: f.schema for cls, f in _FEED_OF.items()}

_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Event)
_ANY_DECODER: Final = msgspec.json.Decoder()


def _check_dossier(ev: Any, wards: WardIndex) -> Any:
    check_dossier(ev, wards)
    return ev


def _check_payment(ev: Any, wards: WardIndex) -> Any:
    check_payment(ev, wards)
    return ev


def _check_air_quality(ev: Any, wards: WardIndex) -> Any:
    check_air_quality(ev, wards)
    return ev


_CHECKS: Final[dict[type[EventBase], Callable[[Any, WardIndex], Any]]] = {
    DossierEvent: _check_dossier,
    PaymentEvent: _check_payment,
    FeedbackEvent: check_feedback,
    AirQualityEvent: _check_air_quality,
}
# The time a case began, carried by each of its events: a reset clock shows there as well, and
# case state (processing times, the case tables' history) is measured from it.
_CASE_START: Final[dict[type[EventBase], str]] = {
    DossierEvent: "received_at",
    FeedbackEvent: "submitted_at",
}


def schema_of(ev: Event) -> str:
    """The schema name (= base topic) of an event."""
    return _SCHEMA_OF[type(ev)]


def feed_of(ev: Event) -> Feed:
    """The registry feed an event travels on."""
    return _FEED_OF[type(ev)]


def encode_event(ev: Event) -> bytes:
    """Compact JSON: `schema` first, then the fields in contract order."""
    return _ENCODER.encode(ev)


def decode_event(
    raw: bytes,
    *,
    wards: WardIndex,
    now: datetime,
    expected_schema: str | None = None,
    earliest: datetime = EARLIEST_EVENT_TIME,
) -> Event:
    """Parse, type-check and validate one message; raises Rejected with one of REASONS.

    `now` and `earliest` must be timezone-aware; `expected_schema` is the base topic the message
    came from; events (and cases) dated before `earliest` are `too_old`.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Rejected("oversized", f"{len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        ev: Event = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise _classify(raw, exc, expected_schema) from None
    except RecursionError:
        raise Rejected("not_json", "JSON nested too deeply to parse") from None
    except UnicodeDecodeError as exc:
        raise Rejected("not_json", f"not UTF-8: {exc.reason}") from None
    cls = type(ev)
    if expected_schema is not None and _SCHEMA_OF[cls] != expected_schema:
        raise Rejected(
            "unknown_schema", f"schema {_SCHEMA_OF[cls]!r} on the {expected_schema} topic"
        )
    check_id("event_id", ev.event_id)
    if ev.event_time - now > FUTURE_TOLERANCE:
        raise Rejected(
            "future_time", f"event_time {ev.event_time.isoformat()} is ahead of {now.isoformat()}"
        )
    # Inline rather than a helper: this runs for every event on the ingest's hot path.
    if ev.event_time < earliest:
        raise _too_old("event_time", ev.event_time, earliest)
    start = _CASE_START.get(cls)
    if start is not None and getattr(ev, start) < earliest:
        raise _too_old(start, getattr(ev, start), earliest)
    result: Event = _CHECKS[cls](ev, wards)
    return result


def _too_old(field: str, moment: datetime, earliest: datetime) -> Rejected:
    return Rejected(
        "too_old",
        f"{field} {moment.isoformat()} is before the earliest accepted time {earliest.isoformat()}",
    )


def _classify(raw: bytes, exc: msgspec.DecodeError, expected: str | None) -> Rejected:
    """Name the reason a message failed typed decoding, by inspecting its structure.

    Runs only for bad messages, so it can afford to parse twice.
    """
    try:
        obj = _ANY_DECODER.decode(raw)
    except msgspec.ValidationError as inner:
        # Well-formed JSON that untyped decoding still refuses: a number beyond float range.
        return Rejected("absurd_value", str(inner))
    except msgspec.DecodeError as inner:
        return Rejected("not_json", str(inner))
    except RecursionError:
        return Rejected("not_json", "JSON nested too deeply to parse")
    except UnicodeDecodeError as inner:
        return Rejected("not_json", f"not UTF-8: {inner.reason}")
    if not isinstance(obj, dict):
        return Rejected("unknown_schema", f"a JSON {type(obj).__name__}, not an object")
    schema = obj.get("schema")
    if not isinstance(schema, str) or schema not in SCHEMAS:
        return Rejected("unknown_schema", f"schema {schema!r} is not a known contract")
    if expected is not None and schema != expected:
        return Rejected("unknown_schema", f"schema {schema!r} on the {expected} topic")
    cls = SCHEMAS[schema]
    for field in msgspec.structs.fields(cls):
        if field.encode_name not in obj:
            if field.required:
                return Rejected("missing_field", f"{field.encode_name} is missing")
            continue
        value = obj[field.encode_name]
        reason = _field_reason(field.type, value)
        if reason is not None:
            return Rejected(reason, f"{field.encode_name}: {_short(value)} ({exc})")
    # Every field passes on its own; whatever msgspec objected to has no finer name.
    return Rejected("bad_value", str(exc))


def _field_reason(annotation: Any, value: Any) -> str | None:
    """None if `value` decodes as `annotation`, else the reason it does not."""
    try:
        msgspec.convert(value, annotation)
    except msgspec.ValidationError:
        pass
    else:
        return None
    for option in _options(annotation):
        base = _unannotated(option)
        if typing.get_origin(base) is typing.Literal and isinstance(value, str):
            return "unknown_enum"
        if base is datetime and isinstance(value, str):
            try:
                msgspec.convert(value, datetime)
            except msgspec.ValidationError:
                continue
            return "bad_value"  # a real timestamp without its UTC offset
    return "wrong_type"


def _options(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (X | None), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _unannotated(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
