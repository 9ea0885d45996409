"""Counting feeds on the real database: redelivered events are absorbed and counted as duplicates.

Payments and air-quality readings first try a plain INSERT and fall back to ON CONFLICT only when
a batch meets a stored event (storage.insert_expecting_new): both paths must leave the
tables exactly as one delivery of each event does, and say how many events were new.
"""

from __future__ import annotations

import random

from ioc.core.db.migrate import migrate
from tests.support.direct_writes import decoded_stream, write_batches
from tests.support.ingest_run import snapshot


def test_redelivered_payments_and_readings_are_stored_and_counted_once(
    pg_admin_url: str, pg_schema: str, second_schema: str
) -> None:
    events = decoded_stream(("payments", "air_quality"), seed=31, days=2, limit=30_000)
    assert len({type(a.event) for a in events}) == 2
    migrate(pg_admin_url, schema=pg_schema)
    migrate(pg_admin_url, schema=second_schema)
    once = write_batches(
        pg_admin_url, pg_schema, [events[i : i + 2_000] for i in range(0, len(events), 2_000)]
    )
    assert (once.inserted, once.duplicates, once.dead) == (len(events), 0, 0)

    rng = random.Random(11)
    batches = [events[i : i + 1_500] for i in range(0, len(events), 1_500)]
    # Later batches carry events of earlier ones (a crash before the offset commit), some
    # batches an event twice, and every third batch is clean so the plain INSERT path runs too.
    redelivered = 0
    for k in range(1, len(batches)):
        if k % 3 == 0:
            continue
        again = rng.sample(events[: k * 1_500], 200) + rng.sample(batches[k], 20)
        batches[k] = batches[k] + again
        rng.shuffle(batches[k])
        redelivered += len(again)
    messy = write_batches(pg_admin_url, second_schema, batches)
    assert (messy.inserted, messy.duplicates, messy.dead) == (len(events), redelivered, 0)

    want = snapshot(pg_admin_url, pg_schema)
    got = snapshot(pg_admin_url, second_schema)
    for table in (
        "payment_events",
        "payment_stats_hourly",
        "payment_channel_hourly",
        "payment_merchant_days",
        "air_quality_readings",
        "air_quality_station_hourly",
    ):
        assert want[table], table
        assert got[table] == want[table], table
