"""Rebuild from Kafka: `ioc rebuild` into a fresh schema gives the tables (and so the KPIs) that the
live ingest built, and `--from TIME` starts each partition at the first record of that time."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.db.migrate import migrate
from ioc.core.feeds import FEEDS
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import Window, floor_hour
from simulators.engine import SimConfig, generate
from simulators.scenarios import parse_scenario
from streams.transport.sinks import KafkaSink
from tests.integration.test_ingest_truth import assert_frames_equal

ROOT = Path(__file__).resolve().parents[2]
TABLES = (
    "dossier_events",
    "payment_events",
    "feedback_events",
    "air_quality_readings",
    "dossiers",
    "feedback_reports",
    "dossier_stats_hourly",
    "payment_stats_hourly",
    "payment_merchant_days",
    "feedback_stats_hourly",
    "air_quality_station_hourly",
    "dead_letters",
)
VOLATILE = {"id", "ingested_at", "updated_at", "received_at_db"}
RAW = ("dossier_events", "payment_events", "feedback_events", "air_quality_readings")


def cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import sys; from ioc.app.cli import main; sys.exit(main())", *argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def schemas(pg_admin_url: str) -> Iterator[list[str]]:
    names: list[str] = []
    try:
        yield names
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            for name in names:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


def snapshot(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (without ids and ingest times), sorted."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            cols = [
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                    (schema, table),
                ).fetchall()
            ]
            keep = [
                c
                for c in cols
                # A dead letter's detail may quote the consumer's clock (future_time).
                if c not in VOLATILE
                and not (table == "dead_letters" and c in ("received_at", "detail"))
            ]
            q = sql.SQL("SELECT {} FROM {}.{}").format(
                sql.SQL(", ").join(map(sql.Identifier, keep)),
                sql.Identifier(schema),
                sql.Identifier(table),
            )
            # Float sums in rollups depend on how records fell into batches (addition order).
            rows = [
                tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in conn.execute(q).fetchall()
            ]
            out[table] = sorted(rows, key=repr)
    return out


def kpis(url: str, schema: str, end: datetime) -> list[Any]:
    wards = sorted(load_pack("halong").codes)
    out: list[Any] = []
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for hours_back in (0, 7, 19):
            t = end - timedelta(hours=hours_back, minutes=13)
            w = Window(floor_hour(t) - timedelta(hours=24), floor_hour(t))
            out.append(dossier_kpis(conn, wards, w, t))
            out.append(feedback_kpis(conn, wards, w, t))
            out.append(payment_kpis(conn, wards, w))
            out.append(air_quality_kpis(conn, wards, t))
    return out


def test_rebuild_equals_original_and_from_time_starts_there(
    services: ConnectionInfo, pg_admin_url: str, schemas: list[str]
) -> None:
    bootstrap = services.kafka_bootstrap
    assert bootstrap and services.writer_url and services.reader_url
    run = uuid.uuid4().hex[:8]
    prefix = f"rb{run}."
    end = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    config = SimConfig(
        start=end - timedelta(days=2),
        duration=timedelta(days=2),
        seed=31,
        scenarios=(parse_scenario("poison:after=3h,every=12h"),),
    )
    items = list(generate(config, load_pack("halong")))
    boundary = int((end - timedelta(days=1)).timestamp())
    first = [it for it in items if it[0] < boundary]
    second = [it for it in items if it[0] >= boundary]
    sink = KafkaSink(bootstrap, topic_name=lambda t: prefix + t)
    sink.ensure_topics(f.topic for f in FEEDS)
    for _t, _i, topic, key, value, _w in first:
        sink.send(topic, key, value)
    sink.flush()
    time.sleep(1.0)
    middle = datetime.now(UTC)
    time.sleep(1.0)
    for _t, _i, topic, key, value, _w in second:
        sink.send(topic, key, value)
    sink.close()

    original, full, partial = (f"t_{run}_{n}" for n in ("orig", "full", "part"))
    schemas.extend([original, full, partial])
    migrate(pg_admin_url, schema=original)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_KAFKA_BOOTSTRAP=bootstrap,
        IOC_TOPIC_PREFIX=prefix,
        IOC_CONSUMER_GROUP=f"rb-{run}",
        IOC_DATABASE_URL=pg_admin_url,
    )
    done = cli({**env, "IOC_DB_SCHEMA": original}, "ingest", "--stop-when-idle", "4")
    assert done.returncode == 0, done.stderr[-3000:]

    done = cli(env, "rebuild", "--schema", full)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"rebuilt schema {full} from {len(items):,} records" in done.stdout
    want = snapshot(services.reader_url, original)
    got = snapshot(services.reader_url, full)
    assert sum(len(want[t]) for t in RAW) + len(want["dead_letters"]) == len(items)
    assert want["dead_letters"] and want["dossiers"] and want["air_quality_station_hourly"]
    for table in TABLES:
        assert got[table] == want[table], table
    for a, b in zip(
        kpis(services.reader_url, original, end), kpis(services.reader_url, full, end), strict=True
    ):
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 30
        text = [c for c in a.columns if a[c].dtype == object]
        assert a[text].equals(b[text])
        assert_frames_equal("kpis", b.drop(columns=text), a.drop(columns=text))

    done = cli(env, "rebuild", "--from", middle.isoformat(), "--schema", partial)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"from {len(second):,} records" in done.stdout
    part = snapshot(services.reader_url, partial)
    assert sum(len(part[t]) for t in RAW) + len(part["dead_letters"]) == len(second)
    ids = {r[0] for t in RAW for r in part[t]}
    assert ids and ids <= {r[0] for t in RAW for r in want[t]}

    again = cli(env, "rebuild", "--schema", full)
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and "already holds events" in again.stderr
    with contextlib.suppress(Exception):
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics([prefix + f.topic for f in FEEDS])
        admin.close()
