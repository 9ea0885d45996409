"""Consumer step of the payments feed: ioc.payments.v1 into payment_events and its rollups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg

from ioc.core.contracts import PUBLIC_COUNTER_TYPES, PaymentEvent
from ioc.core.feeds import PAYMENTS, Feed
from streams.ingest.storage import insert_expecting_new, plain_insert, stage_rows
from streams.ingest.writers.base import Accepted, WriteResult

EVENT_COLUMNS: Final = (
    "event_id",
    "event_time",
    "ward_code",
    "payment_id",
    "merchant_id",
    "merchant_type",
    "channel",
    "amount_vnd",
    "status",
)

# One statement moves the staged batch into the raw table and adds only the rows that were new
# (RETURNING skips redelivered duplicates) to the hourly rollups and to the merchant-day table.
# The new rows are grouped once (`agg`, a few hundred rows per batch) and both hourly rollups
# are summed from that. Buckets are UTC hours by date_bin, which is plain arithmetic, unlike
# date_trunc on timestamptz, which converts through the session's time zone for every row.
# Every rollup's rows are written in key order, the same in every member of a consumer group, so
# two members adding to the same hours wait for each other but never deadlock.
# Public counters are merchant types public_service_fee and tax; cashless is any channel but cash
# (ioc.core.contracts.payments: PUBLIC_COUNTER_TYPES, is_cashless).
INSERT_AND_ROLL_UP: Final = """
WITH ins AS (
    INSERT INTO payment_events (event_id, event_time, ward_code, payment_id, merchant_id,
                                merchant_type, channel, amount_vnd, status)
    SELECT event_id, event_time, ward_code, payment_id, merchant_id, merchant_type, channel,
           amount_vnd, status
    FROM stage_payment_events
    ON CONFLICT (event_id, event_time) DO NOTHING
    RETURNING event_time, ward_code, merchant_id, merchant_type, channel, amount_vnd, status
), agg AS MATERIALIZED (
    SELECT ward_code, date_bin('1 hour', event_time, TIMESTAMPTZ '2000-01-01 00:00+00') AS bucket,
           channel, merchant_type = ANY(%(public_types)s) AS public, status,
           count(*) AS n, sum(amount_vnd) AS amount, max(event_time) AS last_time
    FROM ins GROUP BY 1, 2, 3, 4, 5
), stats AS (
    INSERT INTO payment_stats_hourly AS s (ward_code, bucket, transactions, amount_vnd,
                                           public_total, public_cashless, failed)
    SELECT ward_code, bucket,
           coalesce(sum(n) FILTER (WHERE status = 'succeeded'), 0),
           coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0),
           coalesce(sum(n) FILTER (WHERE status = 'succeeded' AND public), 0),
           coalesce(sum(n) FILTER (WHERE status = 'succeeded' AND public AND channel <> 'cash'),
                    0),
           coalesce(sum(n) FILTER (WHERE status = 'failed'), 0)
    FROM agg GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (ward_code, bucket) DO UPDATE SET
        transactions = s.transactions + EXCLUDED.transactions,
        amount_vnd = s.amount_vnd + EXCLUDED.amount_vnd,
        public_total = s.public_total + EXCLUDED.public_total,
        public_cashless = s.public_cashless + EXCLUDED.public_cashless,
        failed = s.failed + EXCLUDED.failed
    RETURNING 1
), channels AS (
    INSERT INTO payment_channel_hourly AS c (ward_code, bucket, channel, transactions, amount_vnd)
    SELECT ward_code, bucket, channel, sum(n), sum(amount)
    FROM agg WHERE status = 'succeeded'
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (ward_code, bucket, channel) DO UPDATE SET
        transactions = c.transactions + EXCLUDED.transactions,
        amount_vnd = c.amount_vnd + EXCLUDED.amount_vnd
    RETURNING 1
), days AS (
    INSERT INTO payment_merchant_days (ward_code, day, merchant_id)
    SELECT DISTINCT ward_code, (event_time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, merchant_id
    FROM ins WHERE status = 'succeeded' AND channel <> 'cash'
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT coalesce(sum(n), 0), max(last_time) FROM agg
"""
INSERT_AND_ROLL_UP_FIRST_TRY: Final = plain_insert(INSERT_AND_ROLL_UP)


def _row(ev: PaymentEvent) -> tuple[object, ...]:
    return (
        ev.event_id,
        ev.event_time,
        ev.ward_code,
        ev.payment_id,
        ev.merchant_id,
        ev.merchant_type,
        ev.channel,
        ev.amount_vnd,
        ev.status,
    )


class PaymentWriter:
    """FeedWriter for ioc.payments.v1."""

    @property
    def feed(self) -> Feed:
        return PAYMENTS

    @property
    def staging(self) -> tuple[str, ...]:
        return ("payment_events",)

    def write(self, conn: psycopg.Connection[Any], batch: Sequence[Accepted]) -> WriteResult:
        rows = [_row(a.event) for a in batch if isinstance(a.event, PaymentEvent)]
        if not rows:
            return WriteResult()
        stage_rows(conn, "payment_events", EVENT_COLUMNS, rows)
        params = {"public_types": sorted(PUBLIC_COUNTER_TYPES)}
        [found] = insert_expecting_new(
            conn, INSERT_AND_ROLL_UP_FIRST_TRY, INSERT_AND_ROLL_UP, params
        )
        inserted = int(found[0])
        return WriteResult(
            inserted=inserted,
            duplicates=len(rows) - inserted,
            last_event_time=found[1],
        )


WRITER: Final = PaymentWriter()
