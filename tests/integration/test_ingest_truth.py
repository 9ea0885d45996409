"""Truth: a seeded mixed stream through the real broker and `ioc ingest` gives, for every ward and
the city over several windows, the KPIs that pandas recomputes from the simulator's own NDJSON."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.db.migrate import migrate
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.breakdowns import payments_by_channel
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import Window, floor_hour
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from streams.transport.sinks import FileSink, KafkaSink
from tests.support import kpi_reference as ref

ROOT = Path(__file__).resolve().parents[2]


def produce(bootstrap: str, prefix: str, ndjson: Path, end: datetime) -> int:
    """The simulator's stream into Kafka and, byte for byte, into an NDJSON file."""
    config = SimConfig(
        start=end - timedelta(days=4),
        duration=timedelta(days=4),
        seed=20261121,
        params=dataclasses.replace(SimParams(), volume_scale=0.21),
    )
    kafka = KafkaSink(bootstrap, topic_name=lambda t: prefix + t)
    kafka.ensure_topics(ref_topics())
    file = FileSink(ndjson)
    n = 0
    for _t, _i, topic, key, value, _ward in generate(config, load_pack("halong")):
        kafka.send(topic, key, value)
        file.send(topic, key, value)
        n += 1
    kafka.flush()
    kafka.close()
    file.close()
    return n


def ref_topics() -> list[str]:
    return ["ioc.dossiers.v1", "ioc.payments.v1", "ioc.feedback.v1", "ioc.air_quality.v1"]


def run_ingest(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "ioc.app.cli",
                "ingest",
                "--feeds",
                "all",
                "--stop-when-idle",
                "4",
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # Say what the consumer was doing rather than leave a bare timeout.
        err = exc.stderr or ""
        log = err.decode(errors="replace") if isinstance(err, bytes) else err
        raise AssertionError(
            f"ioc ingest still running after 240 s; its log:\n{log[-4000:]}"
        ) from None


def assert_frames_equal(name: str, got: pd.DataFrame, want: pd.DataFrame) -> None:
    for col in want.columns:
        g = got[col].astype(float)
        w = want[col].reindex(got.index).astype(float)
        both_nan = g.isna() & w.isna()
        close = (g - w).abs() <= 1e-6 * w.abs().clip(lower=1.0)
        bad = ~(both_nan | close)
        assert not bad.any(), f"{name}.{col} differs:\n{pd.DataFrame({'db': g, 'pandas': w})[bad]}"


def test_kpis_equal_pandas_recomputation(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str, tmp_path: Path
) -> None:
    migrate(pg_admin_url, schema=pg_schema)
    end = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    prefix = f"truth{uuid.uuid4().hex[:8]}."
    ndjson = tmp_path / "stream.ndjson"
    assert services.kafka_bootstrap and services.writer_url and services.reader_url
    produced = produce(services.kafka_bootstrap, prefix, ndjson, end)
    assert produced >= 100_000

    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_KAFKA_BOOTSTRAP=services.kafka_bootstrap,
        IOC_TOPIC_PREFIX=prefix,
        IOC_CONSUMER_GROUP=f"truth-{uuid.uuid4().hex[:8]}",
        IOC_DATABASE_URL=services.writer_url,
        IOC_DB_SCHEMA=pg_schema,
    )
    done = run_ingest(env)
    assert done.returncode == 0, done.stderr[-3000:]

    frames = ref.load_events(ndjson.read_bytes().splitlines())
    assert sum(len(f) for f in frames.values()) == produced
    pack = load_pack("halong")
    wards = sorted(pack.codes)
    with psycopg.connect(services.reader_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        stored = count_raw(conn)
        assert stored == produced, "every simulator event must be stored exactly once"
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        assert dead == (0,)
        windows = [
            Window(end - timedelta(days=4), end),
            Window.last(24, end - timedelta(hours=1)),
            Window(end - timedelta(days=2, hours=6), end - timedelta(days=2)),
            Window(end - timedelta(hours=30), end - timedelta(hours=29)),
        ]
        checked = 0
        for window in windows:
            now = window.end
            assert_frames_equal(
                f"dossiers{window}",
                dossier_kpis(conn, wards, window, end),
                ref.dossiers(frames["ioc.dossiers.v1"], wards, window.start, window.end, end),
            )
            assert_frames_equal(
                f"payments{window}",
                payment_kpis(conn, wards, window),
                ref.payments(frames["ioc.payments.v1"], wards, window.start, window.end),
            )
            assert_frames_equal(
                f"feedback{window}",
                feedback_kpis(conn, wards, window, end),
                ref.feedback(
                    frames["ioc.feedback.v1"], wards, window.start, window.end, end, pack.ward_at
                ),
            )
            checked += 3 * (len(wards) + 1)
            del now
        pay = frames["ioc.payments.v1"]
        for ward in wards[:5]:
            got_ch = payments_by_channel(conn, ward, windows[1]).set_index("channel")
            sel = pay[
                (pay["ward_code"] == ward)
                & (pay["status"] == "succeeded")
                & (pay["event_time"] >= windows[1].start)
                & (pay["event_time"] < windows[1].end)
            ]
            want_ch = sel.groupby("channel").agg(
                count=("event_id", "size"), amount_vnd=("amount_vnd", "sum")
            )
            assert_frames_equal(f"channels {ward}", got_ch.sort_index(), want_ch.sort_index())
        aq_got = air_quality_kpis(conn, wards, end)
        aq_want = ref.air_quality(frames["ioc.air_quality.v1"], wards, end)
        assert_frames_equal("air_quality", aq_got, aq_want)
        assert aq_got["aqi"].notna().sum() >= 5, "some wards must have stations with an AQI"
        assert not math.isnan(float(aq_got.loc["city", "aqi"]))
    # Non-trivial: the numbers compared are not all zeros.
    totals = dossier_kpis_totals(services.reader_url, pg_schema, wards, windows[0], end)
    assert totals["received"] > 500 and totals["resolved"] > 300
    assert checked > 0


def count_raw(conn: psycopg.Connection[Any]) -> int:
    total = 0
    for table in ("dossier_events", "payment_events", "feedback_events", "air_quality_readings"):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        found = row.fetchone()
        assert found is not None
        total += int(found[0])
    return total


def dossier_kpis_totals(
    url: str, schema: str, wards: list[str], window: Window, now: datetime
) -> pd.Series:
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        return dossier_kpis(conn, wards, window, now).loc["city"]
