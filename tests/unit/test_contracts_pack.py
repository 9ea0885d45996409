"""Contracts against the real Hạ Long pack: it is a WardIndex; poison is rejected with it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from ioc.core.citypack import CityPack, load_pack
from ioc.core.contracts import FeedbackEvent, PaymentEvent, Rejected, WardIndex, decode_event
from simulators.poison import ACCEPTED, PoisonWards, poison_messages

NOW = datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=7)))


def pack() -> CityPack:
    return load_pack("halong")


def test_pack_satisfies_the_protocols() -> None:
    wards: WardIndex = pack()  # checked by mypy as well as at runtime
    poison_wards: PoisonWards = pack()
    assert "06649" in wards
    assert "99999" not in wards
    assert len(poison_wards.codes) == 33


def test_every_ward_code_decodes_and_centroids_derive_their_ward() -> None:
    p = pack()
    for i, ward in enumerate(p.wards):
        ev = PaymentEvent(
            event_id=f"e{i}",
            event_time=NOW,
            payment_id=f"P{i}",
            merchant_id="M",
            ward_code=ward.code,
            merchant_type="tax",
            channel="public_gateway",
            amount_vnd=1_000,
            status="succeeded",
        )
        assert decode_event(msgspec.json.encode(ev), wards=p, now=NOW) == ev
        report = FeedbackEvent(
            event_id=f"f{i}",
            event_time=NOW,
            report_id=f"R{i}",
            kind="submitted",
            category="other",
            urgency="normal",
            channel="web",
            lat=ward.lat,
            lon=ward.lon,
            submitted_at=NOW,
            due_at=NOW,
        )
        decoded = decode_event(msgspec.json.encode(report), wards=p, now=NOW)
        assert isinstance(decoded, FeedbackEvent)
        assert decoded.ward_code == ward.code


def test_poison_is_rejected_with_the_real_pack() -> None:
    p = pack()
    messages = poison_messages(2025, NOW, p)
    checked = 0
    for m in messages:
        if m.expected_reason in (ACCEPTED, "impossible_transition"):
            decode_event(m.value, wards=p, now=NOW, expected_schema=m.topic)
            continue
        with pytest.raises(Rejected) as info:
            decode_event(m.value, wards=p, now=NOW, expected_schema=m.topic)
        assert info.value.reason == m.expected_reason, info.value.detail
        checked += 1
    assert checked >= 40
