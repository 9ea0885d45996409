"""Topic step for replays: shift every timestamp in an event by one offset, via the contracts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import msgspec

from ioc.core.contracts import Event, encode_event

_DECODER: Final = msgspec.json.Decoder(Event)
# Datetime fields per contract, found once from the struct definitions.
_TIME_FIELDS: dict[type, tuple[str, ...]] = {}


def _time_fields(ev: Event) -> tuple[str, ...]:
    cls = type(ev)
    names = _TIME_FIELDS.get(cls)
    if names is None:
        names = tuple(
            f.name
            for f in msgspec.structs.fields(cls)
            if isinstance(getattr(ev, f.name), datetime) or "datetime" in repr(f.type)
        )
        _TIME_FIELDS[cls] = names
    return names


class Retimer:
    """Shifts the events' timestamps by `shift`; counts what it changed and what it passed.

    An event is decoded with its contract (typed, without the value checks, so that a recorded
    event which is poison for other reasons is retimed and stays the same poison), every datetime
    field is moved by the shift - event_time, received_at, due_at, submitted_at - and the event
    is encoded again. Bytes that do not decode as an event (not JSON, unknown schema, wrong
    types) are replayed unchanged.
    """

    def __init__(self, shift: timedelta) -> None:
        self.shift = shift
        self.retimed = 0
        self.unchanged = 0

    def __call__(self, value: bytes) -> bytes:
        try:
            ev = _DECODER.decode(value)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            self.unchanged += 1
            return value
        try:
            changes = {
                name: moment + self.shift
                for name in _time_fields(ev)
                if isinstance(moment := getattr(ev, name), datetime)
            }
        except OverflowError:
            # A reset device clock (year 1) shifted further back leaves the calendar: replay the
            # event as recorded, and the ingest dead-letters it as too old either way.
            self.unchanged += 1
            return value
        self.retimed += 1
        return encode_event(msgspec.structs.replace(ev, **changes))


def shift_to(first_time_ms: int, target: datetime) -> timedelta:
    """The shift, in whole seconds, that moves the first recorded time to `target`."""
    return timedelta(seconds=round(target.timestamp() - first_time_ms / 1000))
