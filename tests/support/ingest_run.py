"""Helpers for the ingest reliability tests: topics, simulated streams, `ioc ingest` processes,
and whole-table snapshots to compare two databases row by row."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from psycopg import sql

from ioc.core.citypack import load_pack
from ioc.core.feeds import FEEDS
from simulators.engine import SimConfig, generate

REPO = Path(__file__).resolve().parents[2]
# Columns that record when or in which order a row was written, not what it says.
VOLATILE = frozenset({"ingested_at", "updated_at", "received_at", "id"})
RAW_TABLES = {
    "ioc.dossiers.v1": "dossier_events",
    "ioc.payments.v1": "payment_events",
    "ioc.feedback.v1": "feedback_events",
    "ioc.air_quality.v1": "air_quality_readings",
}


@dataclass(frozen=True)
class Message:
    """One message to produce: base topic, key, value."""

    topic: str
    key: bytes | None
    value: bytes


def simulated(start: datetime, duration: timedelta, seed: int) -> list[Message]:
    """The simulator's messages for a run (deterministic for the same arguments)."""
    cfg = SimConfig(start=start, duration=duration, seed=seed)
    return [
        Message(topic, key, value)
        for _, _, topic, key, value, _ in generate(cfg, load_pack("halong"))
    ]


@contextlib.contextmanager
def topic_prefix(bootstrap: str) -> Iterator[str]:
    """A fresh prefix whose four feed topics exist (3 partitions each); deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    names = [prefix + f.topic for f in FEEDS]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ioc-tests-ingest")
    admin.create_topics(
        {n: {"num_partitions": 3, "replication_factor": 1} for n in names},
        wait_for_metadata=True,
    )
    try:
        yield prefix
    finally:
        with contextlib.suppress(Exception):
            admin.delete_topics(names)
        admin.close()


def produce(bootstrap: str, prefix: str, messages: Iterable[Message]) -> int:
    """Send every message (acks=all) and wait for all acknowledgements."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=10, batch_size=256 * 1024
    )
    n = 0
    try:
        futures = []
        for m in messages:
            futures.append(producer.send(prefix + m.topic, key=m.key, value=m.value))
            n += 1
        producer.flush(timeout=120)
        for f in futures:
            f.get(timeout=60)
    finally:
        producer.close()
    return n


def ingest_env(
    *, db_url: str, schema: str, prefix: str, bootstrap: str, group: str
) -> dict[str, str]:
    """The environment of an `ioc ingest` child: only our IOC_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_DATABASE_URL=db_url,
        IOC_DB_SCHEMA=schema,
        IOC_TOPIC_PREFIX=prefix,
        IOC_KAFKA_BOOTSTRAP=bootstrap,
        IOC_CONSUMER_GROUP=group,
        PYTHONUNBUFFERED="1",
    )
    return env


def ingest_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "ioc.app.cli", "ingest", "--feeds", "all", *extra]


def start_ingest(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`ioc ingest` in the background, its stderr appended to `log`."""
    fh = log.open("ab")
    try:
        return subprocess.Popen(
            ingest_cmd(*extra), env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
        )
    finally:
        fh.close()


def run_ingest_until_idle(env: dict[str, str], log: Path, idle: float = 3.0) -> None:
    """Run `ioc ingest --stop-when-idle` to completion; fail on a non-zero exit."""
    proc = start_ingest(env, log, "--stop-when-idle", str(idle))
    try:
        rc = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, f"ioc ingest exited {rc}:\n{log.read_text(errors='replace')[-3000:]}"


def count_raw(admin_url: str, schema: str) -> int:
    """Rows in the four raw event tables plus dead letters (progress of an ingest)."""
    with psycopg.connect(admin_url, connect_timeout=5) as conn:
        parts = [
            sql.SQL("(SELECT count(*) FROM {}.{})").format(
                sql.Identifier(schema), sql.Identifier(t)
            )
            for t in [*RAW_TABLES.values(), "dead_letters"]
        ]
        row = conn.execute(sql.SQL("SELECT ") + sql.SQL(" + ").join(parts)).fetchone()
    return int(row[0]) if row else 0


def snapshot(admin_url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the schema (but the migration record and the health tables), all rows
    sorted, without the columns that only say when a row was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(admin_url) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE' ORDER BY 1",
                (schema,),
            ).fetchall()
        ]
        for table in tables:
            if table in ("schema_migrations", "feed_health", "feed_health_members"):
                continue
            cols = [
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s ORDER BY ordinal_position",
                    (schema, table),
                ).fetchall()
                if str(r[0]) not in VOLATILE
            ]
            ident = sql.SQL(", ").join(map(sql.Identifier, cols))
            query = sql.SQL("SELECT {} FROM {}.{} ORDER BY {}").format(
                ident, sql.Identifier(schema), sql.Identifier(table), ident
            )
            out[table] = [tuple(map(_exact, r)) for r in conn.execute(query).fetchall()]
    return out


def _exact(value: Any) -> Any:
    """Floats to 9 significant digits: sums in rollups depend on the order of addition, and
    batch boundaries (which crashes move) change that order in the last bits."""
    return float(f"{value:.9g}") if isinstance(value, float) else value


def health(admin_url: str, schema: str) -> dict[str, tuple[Any, ...]]:
    """feed -> (events_total, dead_letters, last_event_time)."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT feed, events_total, dead_letters, last_event_time FROM {}.feed_health"
            ).format(sql.Identifier(schema))
        ).fetchall()
    return {str(r[0]): tuple(r[1:]) for r in rows}


def health_members(admin_url: str, schema: str) -> list[tuple[str, str]]:
    """(feed, member) of every row in feed_health_members."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            sql.SQL("SELECT feed, member FROM {}.feed_health_members ORDER BY 1, 2").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    return [(str(f), str(m)) for f, m in rows]


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def per_topic(messages: Sequence[Message]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in messages:
        out[m.topic] = out.get(m.topic, 0) + 1
    return out


def read_topics(
    bootstrap: str, topics: list[str], expected: int, timeout_s: float = 120
) -> list[Any]:
    """Every record of `topics` from the start: until `expected` arrived (or the timeout), then
    one more poll, so that a record too many would be seen."""
    consumer = KafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500, max_records=10_000).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=1500).values():
            records.extend(batch)  # nothing more may arrive
    finally:
        consumer.close()
    return records
