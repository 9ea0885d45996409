"""Consumer killed with SIGKILL at three random points: tables end as in a run without crashes."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.db.migrate import migrate
from tests.support.ingest_run import (
    RAW_TABLES,
    count_raw,
    health,
    ingest_env,
    per_topic,
    produce,
    run_ingest_until_idle,
    simulated,
    snapshot,
    start_ingest,
    topic_prefix,
    wait_for,
)

# A weekday morning of Hạ Long: about 40,000 events of the four feeds.
START = datetime(2025, 3, 4, 0, 0, tzinfo=UTC)
DURATION = timedelta(hours=8)
KILLS = 3


def test_sigkill_three_times_then_restart_equals_a_run_without_crashes(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str, tmp_path: Path
) -> None:
    assert services.writer_url and services.kafka_bootstrap
    bootstrap = services.kafka_bootstrap
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)  # printed on failure through the assertion messages
    messages = simulated(START, DURATION, seed=11)
    expected = per_topic(messages)
    total = len(messages)
    assert 25_000 < total < 60_000, total

    reference = f"{pg_schema}_ref"
    migrate(pg_admin_url, schema=pg_schema)
    migrate(pg_admin_url, schema=reference)
    try:
        with topic_prefix(bootstrap) as prefix:
            produce(bootstrap, prefix, messages)

            # The run without crashes, into its own schema and consumer group.
            ref_env = ingest_env(
                db_url=services.writer_url,
                schema=reference,
                prefix=prefix,
                bootstrap=bootstrap,
                group=f"ref-{uuid.uuid4().hex[:8]}",
            )
            run_ingest_until_idle(ref_env, tmp_path / "reference.log")

            env = ingest_env(
                db_url=services.writer_url,
                schema=pg_schema,
                prefix=prefix,
                bootstrap=bootstrap,
                group=f"crash-{uuid.uuid4().hex[:8]}",
            )
            log = tmp_path / "crash.log"
            # Kill when a random share of the stream is in; small batches give many
            # transaction boundaries, so some kills fall between the database commit and the
            # offset commit (redelivery) and others inside a transaction (rollback).
            points = sorted(rng.uniform(0.1, 0.9) for _ in range(KILLS))
            killed_at: list[int] = []
            for share in points:
                proc = start_ingest(env, log, "--max-batch", "300", "--stop-when-idle", "60")
                try:
                    wait_for(
                        lambda share=share: count_raw(pg_admin_url, pg_schema) >= share * total,
                        120,
                        f"{share:.0%} of the stream (seed {seed})",
                    )
                    time.sleep(rng.uniform(0.0, 0.15))
                    proc.send_signal(signal.SIGKILL)
                    assert proc.wait(timeout=30) == -signal.SIGKILL
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                killed_at.append(count_raw(pg_admin_url, pg_schema))
            assert killed_at[-1] < total, f"the last kill came after the end (seed {seed})"
            run_ingest_until_idle(env, log)

        got = snapshot(pg_admin_url, pg_schema)
        want = snapshot(pg_admin_url, reference)
        assert set(got) == set(want)
        for table in sorted(want):
            assert got[table] == want[table], f"table {table} differs (seed {seed}, {killed_at})"
        # Independent of both runs: every produced message is a row or a dead letter.
        for topic, table in RAW_TABLES.items():
            stored = len(got[table]) + sum(1 for r in got["dead_letters"] if r[0].endswith(topic))
            assert stored == expected.get(topic, 0), topic
        assert len(got["payment_events"]) > 20_000
        h, ref_h = health(pg_admin_url, pg_schema), health(pg_admin_url, reference)
        assert h == ref_h
        assert sum(v[0] for v in h.values()) == sum(len(got[t]) for t in RAW_TABLES.values())
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(reference))
            )


def test_sigterm_mid_ingest_exits_cleanly_and_resumes_without_duplicates(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str, tmp_path: Path
) -> None:
    assert services.writer_url and services.kafka_bootstrap
    bootstrap = services.kafka_bootstrap
    messages = simulated(START, timedelta(hours=5), seed=12)
    migrate(pg_admin_url, schema=pg_schema)
    with topic_prefix(bootstrap) as prefix:
        produce(bootstrap, prefix, messages)
        env = ingest_env(
            db_url=services.writer_url,
            schema=pg_schema,
            prefix=prefix,
            bootstrap=bootstrap,
            group=f"term-{uuid.uuid4().hex[:8]}",
        )
        log = tmp_path / "term.log"
        proc = start_ingest(env, log, "--max-batch", "300", "--stop-when-idle", "60")
        try:
            wait_for(
                lambda: count_raw(pg_admin_url, pg_schema) >= len(messages) // 3, 120, "a third"
            )
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        text = log.read_text(errors="replace")
        assert rc == 0, text[-2000:]
        assert "SIGTERM received" in text
        stopped_at = count_raw(pg_admin_url, pg_schema)
        assert stopped_at < len(messages)
        run_ingest_until_idle(env, log)
    h = health(pg_admin_url, pg_schema)
    assert sum(v[0] for v in h.values()) == len(messages) == count_raw(pg_admin_url, pg_schema)
    with psycopg.connect(pg_admin_url) as conn:
        query = sql.SQL("SELECT sum(duplicates_total) FROM {}.feed_health")
        dupes = conn.execute(query.format(sql.Identifier(pg_schema))).fetchone()
    # Only what was in the database had its offsets committed, and all of it had.
    assert dupes == (0,)
