"""Poison stream: deterministic, every rejected kind covered, each message rejected as labelled."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from ioc.core.contracts import (
    LIFECYCLES,
    MAX_MESSAGE_BYTES,
    REASONS,
    SCHEMAS,
    CaseEvent,
    CaseHistory,
    DossierEvent,
    FeedbackEvent,
    Rejected,
    decode_event,
    schema_of,
)
from simulators.poison import ACCEPTED, PoisonMessage, poison_messages

NOW = datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=7)))


@dataclass(frozen=True)
class FakeWard:
    lat: float
    lon: float


class FakeWards:
    """Wards around Hạ Long; points within 0.03° of a centre belong to that ward."""

    def __init__(self, centres: dict[str, FakeWard]) -> None:
        self.centres = centres
        self.codes = frozenset(centres)

    def __contains__(self, code: str) -> bool:
        return code in self.centres

    def ward_at(self, lat: float, lon: float) -> str | None:
        for code, c in self.centres.items():
            if abs(c.lat - lat) < 0.03 and abs(c.lon - lon) < 0.03:
                return code
        return None

    def ward(self, code: str) -> FakeWard:
        return self.centres[code]


WARDS = FakeWards(
    {
        "06649": FakeWard(20.95, 107.02),
        "06652": FakeWard(20.96, 107.09),
        "06658": FakeWard(21.01, 107.15),
    }
)
MESSAGES = poison_messages(7, NOW, WARDS)


def test_is_deterministic() -> None:
    assert poison_messages(7, NOW, WARDS) == MESSAGES
    other = poison_messages(8, NOW, WARDS)
    assert [m.expected_reason for m in other] == [m.expected_reason for m in MESSAGES]
    assert [m.value for m in other] != [m.value for m in MESSAGES]


def test_every_reason_but_bad_value_is_covered() -> None:
    reasons = {m.expected_reason for m in MESSAGES} - {ACCEPTED}
    assert reasons == set(REASONS) - {"bad_value"}
    assert all(m.topic in SCHEMAS for m in MESSAGES)
    assert all(isinstance(m, PoisonMessage) and m.key for m in MESSAGES)


PER_EVENT = [m for m in MESSAGES if m.expected_reason not in (ACCEPTED, "impossible_transition")]


@pytest.mark.parametrize(
    "msg", PER_EVENT, ids=[f"{i}-{m.expected_reason}" for i, m in enumerate(PER_EVENT)]
)
def test_each_message_is_rejected_with_its_reason(msg: PoisonMessage) -> None:
    with pytest.raises(Rejected) as info:
        decode_event(msg.value, wards=WARDS, now=NOW, expected_schema=msg.topic)
    assert info.value.reason == msg.expected_reason, info.value.detail


def test_oversized_messages_are_only_just_too_big_or_bigger() -> None:
    sizes = [len(m.value) for m in MESSAGES if m.expected_reason == "oversized"]
    assert sizes
    assert all(size > MAX_MESSAGE_BYTES for size in sizes)
    assert min(sizes) == MAX_MESSAGE_BYTES + 1


def _sequences() -> dict[bytes, list[PoisonMessage]]:
    by_key: dict[bytes, list[PoisonMessage]] = {}
    for m in MESSAGES:
        if m.expected_reason in (ACCEPTED, "impossible_transition"):
            by_key.setdefault(m.key, []).append(m)
    return by_key


def test_impossible_transitions_are_valid_event_by_event() -> None:
    sequences = _sequences()
    assert len(sequences) >= 3
    for key, messages in sequences.items():
        assert messages[-1].expected_reason == "impossible_transition"
        assert all(m.expected_reason == ACCEPTED for m in messages[:-1])
        events = [
            decode_event(m.value, wards=WARDS, now=NOW, expected_schema=m.topic) for m in messages
        ]
        assert len({ev.event_id for ev in events}) == len(events)
        history = CaseHistory()
        for m, ev in zip(messages, events, strict=True):
            assert isinstance(ev, DossierEvent | FeedbackEvent)
            case_id = ev.dossier_id if isinstance(ev, DossierEvent) else ev.report_id
            assert key == case_id.encode()
            started = ev.received_at if isinstance(ev, DossierEvent) else ev.submitted_at
            assert ev.ward_code is not None
            cev = CaseEvent(ev.event_id, ev.kind, ev.event_time, started, ev.ward_code)
            why = history.check(LIFECYCLES[schema_of(ev)], cev)
            assert (why is None) is (m.expected_reason == ACCEPTED), (key, ev.kind, why)
            history.add(cev)


def test_setup_events_share_the_case_static_fields() -> None:
    for messages in _sequences().values():
        decoded = [msgspec.json.decode(m.value) for m in messages]
        static = {"ward_code", "received_at", "due_at", "submitted_at", "fee_vnd", "category"}
        firsts = {k: v for k, v in decoded[0].items() if k in static}
        for other in decoded[1:]:
            assert {k: v for k, v in other.items() if k in static} == firsts


def test_rated_poison_carries_a_valid_rating() -> None:
    for messages in _sequences().values():
        last = decode_event(messages[-1].value, wards=WARDS, now=NOW)
        if isinstance(last, FeedbackEvent):
            assert last.kind == "rated"
            assert last.rating is not None
            assert 1 <= last.rating <= 5


def test_needs_wards() -> None:
    with pytest.raises(ValueError, match="no wards"):
        poison_messages(1, NOW, FakeWards({}))
