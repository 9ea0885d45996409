"""Fill a schema from a seeded simulator stream through the real table writers, without Kafka."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg import sql

from ioc.core.citypack import load_pack
from ioc.core.contracts import Rejected, decode_event
from ioc.core.feeds import BY_TOPIC, FEED_NAMES
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from streams.ingest.health import FeedDelta, write_health
from streams.ingest.writers.base import Accepted
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord


def connect(url: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    return conn


def stream(
    end: datetime, duration: timedelta, seed: int, volume_scale: float, warmup_days: int = 50
) -> Iterable[tuple[str, bytes | None, bytes]]:
    """(topic, key, value) of a seeded run ending at `end`."""
    params = dataclasses.replace(SimParams(), volume_scale=volume_scale, warmup_days=warmup_days)
    config = SimConfig(start=end - duration, duration=duration, seed=seed, params=params)
    for _t, _i, topic, key, value, _ward in generate(config, load_pack("halong")):
        yield topic, key, value


def write(
    conn: psycopg.Connection[Any],
    messages: Iterable[tuple[str, bytes | None, bytes]],
    now: datetime,
    batch: int = 5000,
    lag: dict[str, int | None] | None = None,
) -> dict[str, int]:
    """Decode and write every message with the feed writers, `batch` per transaction, and the
    feed health rows as the ingest loop would; returns rows inserted per feed."""
    pack = load_pack("halong")
    inserted: dict[str, int] = defaultdict(int)
    pending: dict[str, list[Accepted]] = defaultdict(list)
    count = 0
    offset = 0

    def flush() -> None:
        deltas: dict[str, FeedDelta] = {}
        with conn.transaction():
            for feed, accepted in sorted(pending.items()):
                if not accepted:
                    continue
                result = WRITERS[feed].write(conn, accepted)
                delta = deltas.setdefault(feed, FeedDelta())
                delta.records += len(accepted)
                delta.inserted += result.inserted
                delta.add_time(max(a.event.event_time for a in accepted))
                inserted[feed] += result.inserted
            write_health(conn, deltas, lag or {}, {}, "dashboard-fill")
        pending.clear()

    for topic, key, value in messages:
        feed = BY_TOPIC[topic].name
        try:
            event = decode_event(value, wards=pack, now=now, expected_schema=topic)
        except Rejected:
            continue
        record = SourceRecord(topic, 0, offset, key, value, 0)
        offset += 1
        pending[feed].append(Accepted(record, event))
        count += 1
        if count % batch == 0:
            flush()
    flush()
    return {f: inserted.get(f, 0) for f in FEED_NAMES}


def touch_health(
    conn: psycopg.Connection[Any],
    feeds: Iterable[str],
    event_time: datetime,
    lag: int | None = 0,
) -> None:
    """Mark feeds as having just ingested an event at `event_time` (a live feed's heartbeat)."""
    deltas = {}
    for feed in feeds:
        d = FeedDelta(records=1)
        d.add_time(event_time)
        deltas[feed] = d
    with conn.transaction():
        write_health(conn, deltas, dict.fromkeys(deltas, lag), {}, "dashboard-fill")


def daytime_offset(real_now: datetime) -> timedelta:
    """How far to move a test's clock back so that its local 'today' is well under way.

    Windows such as 'today' are nearly empty just after local midnight (the simulated night has
    few events), which would make colour and tile checks meaningless; before 10:00 local the
    test lives at the end of the previous day instead.
    """
    local = real_now.astimezone(timezone(timedelta(hours=7)))
    if local.hour >= 10:
        return timedelta(0)
    return timedelta(hours=local.hour, minutes=local.minute + 5)
