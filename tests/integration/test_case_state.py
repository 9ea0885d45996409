"""Case state on the real database: shuffled, duplicated delivery ends where in-order did."""

from __future__ import annotations

import random
from typing import Any

import psycopg
from psycopg import sql

from ioc.core.db.migrate import migrate
from tests.support.direct_writes import decoded_stream, write_batches

TABLES = {
    "dossier_events": "event_id",
    "dossiers": "dossier_id",
    "dossier_stats_hourly": "ward_code, bucket",
    "feedback_events": "event_id",
    "feedback_reports": "report_id",
    "feedback_stats_hourly": "ward_code, bucket",
}
VOLATILE = {"ingested_at", "updated_at"}


def snapshot(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table, order in TABLES.items():
            cols = [
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position",
                    (schema, table),
                )
                if str(r[0]) not in VOLATILE
            ]
            query = sql.SQL("SELECT {} FROM {}.{} ORDER BY {}").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.Identifier(schema),
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c.strip()) for c in order.split(",")),
            )
            out[table] = conn.execute(query).fetchall()
    return out


def test_out_of_order_and_duplicates_end_in_the_in_order_state(
    pg_admin_url: str, pg_schema: str, second_schema: str
) -> None:
    events = decoded_stream(("dossiers", "feedback"), seed=77, days=5, limit=10**9)
    assert len(events) > 2_000
    migrate(pg_admin_url, schema=pg_schema)
    migrate(pg_admin_url, schema=second_schema)
    in_order = [events[i : i + 500] for i in range(0, len(events), 500)]
    assert write_batches(pg_admin_url, pg_schema, in_order).dead == 0

    rng = random.Random(5)
    messy = events + rng.sample(events, len(events) // 5)  # a fifth delivered twice
    rng.shuffle(messy)
    batches = [messy[i : i + 333] for i in range(0, len(messy), 333)]
    assert write_batches(pg_admin_url, second_schema, batches).dead == 0

    want = snapshot(pg_admin_url, pg_schema)
    got = snapshot(pg_admin_url, second_schema)
    assert len(want["dossiers"]) > 300 and len(want["feedback_reports"]) > 50
    for table in TABLES:
        assert got[table] == want[table], table
