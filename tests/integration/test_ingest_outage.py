"""PostgreSQL stopped for ~20 s during ingest: the consumer waits, reconnects by itself, and
the tables end complete (checked against counts computed from the simulator's own output)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import psycopg
import pytest
from psycopg import sql

from ioc.app.services import manager
from ioc.app.services.state import ConnectionInfo, default_cache_dir, load_state
from ioc.core.db.migrate import migrate
from tests.support.ingest_run import (
    RAW_TABLES,
    Message,
    count_raw,
    ingest_env,
    produce,
    simulated,
    start_ingest,
    topic_prefix,
    wait_for,
)

START = datetime(2025, 3, 5, 0, 0, tzinfo=UTC)
DURATION = timedelta(hours=7)
OUTAGE_S = 20.0
SCHEMA = "ingest_outage"


@pytest.fixture
def private_postgres() -> Iterator[tuple[ConnectionInfo, Path]]:
    """A PostgreSQL cluster of this test alone (and its data dir), so stopping it disturbs no
    other test."""
    root = Path(tempfile.mkdtemp(prefix="ioc-outage-"))
    root.chmod(0o755)  # the postgres user must reach the cluster directory inside
    try:
        info, _ = manager.up(root, default_cache_dir(os.environ), ["postgres"], log=print)
        yield info, root
    finally:
        with contextlib.suppress(Exception):
            manager.down(root, ["postgres"], log=print)
        cluster = load_state(root).get("postgres", {}).get("cluster_dir")
        shutil.rmtree(root, ignore_errors=True)
        if cluster:
            shutil.rmtree(Path(str(cluster)).parent, ignore_errors=True)


def _expected_payments(messages: list[Message]) -> dict[str, tuple[int, int]]:
    """ward -> (succeeded transactions, their amount), straight from the produced bytes."""
    out: dict[str, tuple[int, int]] = {}
    for m in messages:
        if m.topic != "ioc.payments.v1":
            continue
        ev = msgspec.json.decode(m.value)
        if ev["status"] == "succeeded":
            n, amount = out.get(ev["ward_code"], (0, 0))
            out[ev["ward_code"]] = (n + 1, amount + int(ev["amount_vnd"]))
    return out


def test_postgres_outage_mid_ingest_loses_nothing(
    services: ConnectionInfo, private_postgres: tuple[ConnectionInfo, Path], tmp_path: Path
) -> None:
    pg, pg_root = private_postgres
    assert services.kafka_bootstrap and pg.admin_url and pg.writer_url
    bootstrap = services.kafka_bootstrap
    admin = pg.admin_url
    migrate(admin, schema=SCHEMA)
    messages = simulated(START, DURATION, seed=23)
    by_topic = Counter(m.topic for m in messages)
    log = tmp_path / "ingest.log"

    with topic_prefix(bootstrap) as prefix:
        env = ingest_env(
            db_url=pg.writer_url,
            schema=SCHEMA,
            prefix=prefix,
            bootstrap=bootstrap,
            group=f"outage-{uuid.uuid4().hex[:8]}",
        )
        # The stream arrives over ~30 s, so it keeps flowing before, during and after the outage.
        chunks = [messages[i : i + 1000] for i in range(0, len(messages), 1000)]
        errors: list[BaseException] = []

        def producer() -> None:
            try:
                for chunk in chunks:
                    produce(bootstrap, prefix, chunk)
                    time.sleep(30.0 / len(chunks))
            except BaseException as exc:
                errors.append(exc)

        proc = start_ingest(env, log, "--stop-when-idle", "5", "--max-batch", "1000")
        feeder = threading.Thread(target=producer, daemon=True)
        feeder.start()
        try:
            wait_for(lambda: count_raw(admin, SCHEMA) > 2000, 90, "the first rows", every=0.2)
            before = count_raw(admin, SCHEMA)
            manager.down(pg_root, ["postgres"], log=print)
            stopped_at = time.monotonic()
            time.sleep(OUTAGE_S)
            assert proc.poll() is None, "ioc ingest died while the database was down"
            info, started = manager.up(
                pg_root, default_cache_dir(os.environ), ["postgres"], log=print
            )
            assert started == ["postgres"]
            assert info.writer_url == pg.writer_url, "postgres moved to a new port"
            outage = time.monotonic() - stopped_at
            feeder.join(timeout=120)
            assert not errors, errors
            rc = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    retries = text.count("database unavailable")
    assert retries >= 4, f"the outage did not reach the consumer:\n{text[-3000:]}"
    assert "database back after" in text
    assert outage >= OUTAGE_S
    assert before < len(messages) / 2  # the outage came early, with most of the stream ahead

    with psycopg.connect(admin) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(SCHEMA)))
        for topic, table in RAW_TABLES.items():
            query = sql.SQL("SELECT count(*), count(DISTINCT event_id) FROM {}")
            n = conn.execute(query.format(sql.Identifier(table))).fetchone()
            assert n == (by_topic[topic], by_topic[topic]), table
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        rollup = {
            str(w): (int(n), int(a))
            for w, n, a in conn.execute(
                "SELECT ward_code, sum(transactions), sum(amount_vnd) FROM payment_stats_hourly "
                "GROUP BY ward_code"
            ).fetchall()
        }
        assert rollup == _expected_payments(messages)
        dossiers = {
            msgspec.json.decode(m.value)["dossier_id"]
            for m in messages
            if m.topic == "ioc.dossiers.v1"
        }
        assert conn.execute("SELECT count(*) FROM dossiers").fetchone() == (len(dossiers),)
        health = dict(conn.execute("SELECT feed, events_total FROM feed_health").fetchall())
        assert sum(health.values()) == len(messages)
