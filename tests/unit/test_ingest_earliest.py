"""The ingest loop passes its earliest accepted time (IOC_EARLIEST_EVENT_TIME) to the decoder."""

from __future__ import annotations

from datetime import UTC, datetime

from ioc.app.settings import Settings
from ioc.core.contracts import PaymentEvent, encode_event
from ioc.core.feeds import BY_NAME
from streams.ingest.loop import Route, decode_batch
from streams.transport.source import SourceRecord
from tests.unit.test_ingest_loop import NOW, TOPIC, FakeWriter, Wards

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_payment() -> bytes:
    return encode_event(
        PaymentEvent(
            event_id="pay-epoch",
            event_time=EPOCH,
            payment_id="P1",
            merchant_id="M1",
            ward_code="06649",
            merchant_type="shop",
            channel="vietqr",
            amount_vnd=1000,
            status="succeeded",
        )
    )


def test_decode_batch_uses_the_bound_it_is_given() -> None:
    recs = [SourceRecord(TOPIC, 0, 0, None, _epoch_payment(), 0)]
    routes = {TOPIC: Route(BY_NAME["payments"], FakeWriter())}
    default = decode_batch(recs, routes, Wards(), NOW)
    assert [d.reason for d in default.dead] == ["too_old"]
    older = Settings.from_env({"IOC_EARLIEST_EVENT_TIME": "1960-01-01"}).earliest_event_time
    configured = decode_batch(recs, routes, Wards(), NOW, older)
    assert not configured.dead
    assert [a.event.event_id for a in configured.accepted[TOPIC]] == ["pay-epoch"]
