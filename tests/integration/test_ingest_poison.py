"""Poison messages mixed into a good stream: each is a dead letter with its own reason and raw
bytes, every good message is ingested, and the consumer never stops."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.db.migrate import migrate
from simulators.poison import ACCEPTED, poison_messages
from tests.support.ingest_run import (
    RAW_TABLES,
    Message,
    ingest_env,
    produce,
    run_ingest_until_idle,
    simulated,
    topic_prefix,
)


def _event_id(value: bytes) -> str:
    return str(msgspec.json.decode(value)["event_id"])


def test_poison_messages_become_dead_letters_and_good_ones_are_ingested(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str, tmp_path: Path
) -> None:
    assert services.writer_url and services.kafka_bootstrap
    bootstrap = services.kafka_bootstrap
    migrate(pg_admin_url, schema=pg_schema)
    now = datetime.now(UTC)
    # Good events end an hour ago, so none is "in the future" and poison events come last
    # in each case's history.
    good = simulated(now - timedelta(hours=4), timedelta(hours=3), seed=5)
    poison = poison_messages(seed=9, now=now, wards=load_pack("halong"))
    rejected = [p for p in poison if p.expected_reason != ACCEPTED]
    assert len({p.expected_reason for p in rejected}) >= 10

    # Poison at random places, keeping its own order (transition sequences must stay in order).
    rng = random.Random(17)
    slots = sorted(rng.sample(range(len(good) + len(poison)), len(poison)))
    stream: list[Message] = []
    g = iter(good)
    p = iter(poison)
    slot_set = set(slots)
    for i in range(len(good) + len(poison)):
        if i in slot_set:
            m = next(p)
            stream.append(Message(m.topic, m.key, m.value))
        else:
            stream.append(next(g))

    with topic_prefix(bootstrap) as prefix:
        produce(bootstrap, prefix, stream)
        env = ingest_env(
            db_url=services.writer_url,
            schema=pg_schema,
            prefix=prefix,
            bootstrap=bootstrap,
            group=f"poison-{uuid.uuid4().hex[:8]}",
        )
        run_ingest_until_idle(env, tmp_path / "ingest.log")
        # `ioc status` reads the same health rows as the dashboard's read-only role.
        status = subprocess.run(
            [sys.executable, "-m", "ioc.app.cli", "status"],
            env={**env, "IOC_DATABASE_URL": str(services.reader_url)},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout

    with psycopg.connect(pg_admin_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        dead = conn.execute("SELECT topic, raw, reason, detail FROM dead_letters").fetchall()
        stored: dict[str, set[str]] = {}
        for topic, table in RAW_TABLES.items():
            rows = conn.execute(sql.SQL("SELECT event_id FROM {}").format(sql.Identifier(table)))
            stored[topic] = {str(r[0]) for r in rows.fetchall()}
        health = dict(conn.execute("SELECT feed, dead_letters FROM feed_health").fetchall())

    got = Counter((str(t), bytes(raw), str(reason)) for t, raw, reason, _ in dead)
    want = Counter((prefix + p.topic, p.value, p.expected_reason) for p in rejected)
    missing = want - got
    extra = got - want
    assert not missing, [(t, r, raw[:80]) for t, raw, r in missing]
    assert not extra, [(t, r, raw[:80]) for t, raw, r in extra]
    assert all(str(d) for *_, d in dead), "every dead letter says why"
    # Devices with a reset clock: year 1 and the Unix epoch are too old, and the detail names
    # the event's time and the bound it fell before.
    too_old = {bytes(raw): str(d) for _, raw, reason, d in dead if reason == "too_old"}
    for stamp, shown in ((b'"0001-01-01T', "0001-01-01T"), (b'"1970-01-01T', "1970-01-01T")):
        details = [d for raw, d in too_old.items() if stamp in raw]
        assert details, stamp
        assert all(shown in d for d in details), details
    assert all("earliest accepted time 2000-01-01T00:00:00+00:00" in d for d in too_old.values())
    # The oversized messages are stored whole.
    assert any(len(raw) > 64 * 1024 for _, raw, _ in got)

    accepted_poison = [m for m in poison if m.expected_reason == ACCEPTED]
    for m in [*good, *accepted_poison]:
        assert _event_id(m.value) in stored[m.topic], (m.topic, m.value[:80])
    assert sum(len(ids) for ids in stored.values()) == len(good) + len(accepted_poison)
    assert sum(health.values()) == len(rejected)
    shown = {line.split()[0]: line.split() for line in status.splitlines()[1:]}
    assert set(shown) == set(health)
    for feed, dead_count in health.items():
        assert int(shown[feed][-2]) == dead_count, status
