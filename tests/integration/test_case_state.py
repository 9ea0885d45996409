"""Case state on the real database: shuffled, duplicated delivery ends where in-order did."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ioc.citypack import load_pack
from ioc.contracts import decode_event, schema_of
from ioc.db.migrate import migrate
from simulators.engine import SimConfig, generate
from streams.source import SourceRecord
from streams.topics import BY_TOPIC
from streams.writer import Accepted
from streams.writers import WRITERS

TABLES = {
    "dossier_events": "event_id",
    "dossiers": "dossier_id",
    "dossier_stats_hourly": "ward_code, bucket",
    "feedback_events": "event_id",
    "feedback_reports": "report_id",
    "feedback_stats_hourly": "ward_code, bucket",
}
VOLATILE = {"ingested_at", "updated_at"}


@pytest.fixture
def second_schema(pg_admin_url: str) -> Iterator[str]:
    name = f"t_{random.SystemRandom().getrandbits(40):010x}"
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def stream() -> list[Accepted]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    config = SimConfig(
        start=end - timedelta(days=5), duration=timedelta(days=5), seed=77,
        feeds=("dossiers", "feedback"),
    )  # fmt: skip
    pack = load_pack("halong")
    out = []
    for offset, (_t, _i, topic, key, value, _w) in enumerate(generate(config, pack)):
        event = decode_event(value, wards=pack, now=end + timedelta(minutes=1))
        record = SourceRecord(topic, 0, offset, key, value, 0)
        out.append(Accepted(record, event))
    return out


def ingest(url: str, schema: str, batches: Sequence[Sequence[Accepted]]) -> int:
    dead = 0
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.commit()
        for batch in batches:
            with conn.transaction():
                by_feed: dict[str, list[Accepted]] = {}
                for acc in batch:
                    by_feed.setdefault(BY_TOPIC[schema_of(acc.event)].name, []).append(acc)
                for feed, items in by_feed.items():
                    dead += len(WRITERS[feed].write(conn, items).dead)
    return dead


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
    events = stream()
    assert len(events) > 2_000
    migrate(pg_admin_url, schema=pg_schema)
    migrate(pg_admin_url, schema=second_schema)
    in_order = [events[i : i + 500] for i in range(0, len(events), 500)]
    assert ingest(pg_admin_url, pg_schema, in_order) == 0

    rng = random.Random(5)
    messy = events + rng.sample(events, len(events) // 5)  # a fifth delivered twice
    rng.shuffle(messy)
    batches = [messy[i : i + 333] for i in range(0, len(messy), 333)]
    assert ingest(pg_admin_url, second_schema, batches) == 0

    want = snapshot(pg_admin_url, pg_schema)
    got = snapshot(pg_admin_url, second_schema)
    assert len(want["dossiers"]) > 300 and len(want["feedback_reports"]) > 50
    for table in TABLES:
        assert got[table] == want[table], table
