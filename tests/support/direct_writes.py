"""Helpers for tests that call the feed writers directly: a decoded simulated stream, and batches
written through WRITERS one transaction each, as the ingest loop writes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from ioc.core.citypack import load_pack
from ioc.core.contracts import decode_event, schema_of
from ioc.core.feeds import BY_TOPIC
from simulators.engine import SimConfig, generate
from streams.ingest.writers.base import Accepted
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord


def decoded_stream(feeds: tuple[str, ...], seed: int, days: int, limit: int) -> list[Accepted]:
    """Up to `limit` simulated events of `feeds` over the last `days` days, decoded."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    config = SimConfig(
        start=end - timedelta(days=days), duration=timedelta(days=days), seed=seed, feeds=feeds
    )
    pack = load_pack("halong")
    out = []
    for offset, (_t, _i, topic, key, value, _w) in enumerate(generate(config, pack)):
        if offset >= limit:
            break
        event = decode_event(value, wards=pack, now=end + timedelta(minutes=1))
        out.append(Accepted(SourceRecord(topic, 0, offset, key, value, 0), event))
    return out


@dataclass
class Written:
    """What the writers said they did, summed over all batches."""

    inserted: int = 0
    duplicates: int = 0
    dead: int = 0


def write_batches(url: str, schema: str, batches: Sequence[Sequence[Accepted]]) -> Written:
    """Each batch through the feed writers in one transaction."""
    total = Written()
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.commit()
        for batch in batches:
            with conn.transaction():
                by_feed: dict[str, list[Accepted]] = {}
                for acc in batch:
                    by_feed.setdefault(BY_TOPIC[schema_of(acc.event)].name, []).append(acc)
                for feed, items in sorted(by_feed.items()):
                    result = WRITERS[feed].write(conn, items)
                    total.inserted += result.inserted
                    total.duplicates += result.duplicates
                    total.dead += len(result.dead)
    return total
