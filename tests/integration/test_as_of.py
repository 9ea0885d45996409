"""Time travel: the KPI queries asked `as_of` T over a database holding the whole stream equal
pandas over only the events that had happened by T, for several T (on the hour and not)."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from ioc.app.connect import connector
from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.contracts import VN_TZ
from ioc.core.db.migrate import migrate
from ioc.core.feeds import FEEDS
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.dossiers import dossier_kpis
from ioc.core.queries.feedback import feedback_kpis
from ioc.core.queries.payments import payment_kpis
from ioc.core.queries.window import Window, floor_hour
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from streams.ingest.loop import IngestOptions, Ingestor, build_routes
from streams.ingest.writers.registry import WRITERS
from streams.transport.bus import Bus
from streams.transport.bus_source import BusSource
from streams.transport.sinks import BusSink
from tests.integration.test_ingest_truth import assert_frames_equal
from tests.support import kpi_reference as ref

ROOT = Path(__file__).resolve().parents[2]
END = floor_hour(datetime.now(UTC)) - timedelta(hours=2)
START = END - timedelta(days=3)


@pytest.fixture(scope="module")
def loaded(services: ConnectionInfo) -> Iterator[tuple[str, dict[str, pd.DataFrame]]]:
    """Three seeded days of the four feeds, ingested through the bus into a fresh schema."""
    assert services.admin_url and services.writer_url
    schema = f"t_{uuid.uuid4().hex[:12]}"
    migrate(services.admin_url, schema=schema)
    pack = load_pack("halong")
    config = SimConfig(
        start=START,
        duration=END - START,
        seed=4242,
        params=dataclasses.replace(SimParams(), volume_scale=0.2),
    )
    bus = Bus()
    sink = BusSink(bus)
    lines: list[bytes] = []
    for _t, _i, topic, key, value, _w in generate(config, pack):
        sink.send(topic, key, value)
        lines.append(value)
    routes = build_routes(FEEDS, WRITERS, lambda t: t)
    source = BusSource(bus, "as-of", list(routes))
    ingestor = Ingestor(
        source,
        routes,
        connector(services.writer_url, schema, "test-as-of"),
        pack,
        options=IngestOptions(poll_timeout_s=0.05),
        stop=threading.Event(),
    )
    try:
        totals = ingestor.run(idle_exit_s=1.0)
    finally:
        ingestor.close()
        source.close()
    assert totals.records == len(lines) and totals.dead == 0
    try:
        yield schema, ref.load_events(lines)
    finally:
        with psycopg.connect(services.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _conn(url: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def local_midnight_after(t: datetime) -> datetime:
    local = t.astimezone(VN_TZ)
    return (
        local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    ).astimezone(UTC)


TIMES = [
    START + timedelta(hours=30),
    START + timedelta(hours=41, minutes=17, seconds=23),
    local_midnight_after(START + timedelta(hours=36)),
    END - timedelta(minutes=50, seconds=1),
]


@pytest.mark.parametrize("t", TIMES, ids=lambda t: t.strftime("%dT%H%M%S"))
def test_as_of_kpis_equal_pandas_on_events_up_to_t(
    services: ConnectionInfo, loaded: tuple[str, dict[str, pd.DataFrame]], t: datetime
) -> None:
    schema, frames = loaded
    assert services.reader_url
    pack = load_pack("halong")
    wards = sorted(pack.codes)
    hour = floor_hour(t)
    midnight = t.astimezone(VN_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    windows = [Window(hour - timedelta(hours=24), hour)]
    if midnight < hour:
        windows.append(Window(midnight.astimezone(UTC), hour))
    at_midnight = t == midnight
    with _conn(services.reader_url, schema) as conn:
        for w in windows:
            d_want = ref.dossiers_as_of(frames["ioc.dossiers.v1"], wards, w.start, w.end, t)
            assert_frames_equal(f"dossiers@{t}{w}", dossier_kpis(conn, wards, w, t), d_want)
            f_want = ref.feedback_as_of(
                frames["ioc.feedback.v1"], wards, w.start, w.end, t, pack.ward_at
            )
            assert_frames_equal(f"feedback@{t}{w}", feedback_kpis(conn, wards, w, t), f_want)
            p_want = ref.payments_as_of(frames["ioc.payments.v1"], wards, w.start, w.end, t)
            if not at_midnight:
                # Acceptance points are per local day (payment_merchant_days has no time of day):
                # as of a time inside a day they include that day's later merchants.
                p_want = p_want.drop(columns=["acceptance_points"])
            assert_frames_equal(f"payments@{t}{w}", payment_kpis(conn, wards, w), p_want)
        aq_want = ref.air_quality_as_of(frames["ioc.air_quality.v1"], wards, t)
        assert_frames_equal(f"air_quality@{t}", air_quality_kpis(conn, wards, t), aq_want)
        # The case KPIs really are a function of T: they differ from the end-of-stream ones.
        backlog_t = dossier_kpis(conn, wards, windows[0], t)["overdue_backlog"]
        open_t = feedback_kpis(conn, wards, windows[0], t)["open_reports"]
        # Half a day away, so a quiet night with no feedback changes cannot make them equal.
        other = (
            t - timedelta(hours=12) if t - START > timedelta(hours=12) else t + timedelta(hours=12)
        )
        open_other = feedback_kpis(conn, wards, windows[0], other)["open_reports"]
    assert int(backlog_t.loc["city"]) > 0 and int(open_t.loc["city"]) > 0
    assert not open_t.equals(open_other)


def test_live_as_of_now_matches_is_open(
    services: ConnectionInfo, loaded: tuple[str, dict[str, pd.DataFrame]]
) -> None:
    """At the end of the stream, open-as-of agrees with the writers' current is_open state."""
    schema, _ = loaded
    assert services.reader_url
    now = END + timedelta(hours=1)
    with _conn(services.reader_url, schema) as conn:
        for table in ("dossiers", "feedback_reports"):
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*) FILTER (WHERE is_open), count(*) FILTER (WHERE "
                    "coalesce(closed_at, 'infinity'::timestamptz) > %(t)s), count(*) FROM {}"
                ).format(sql.Identifier(table)),
                {"t": now},
            ).fetchone()
            assert row is not None and row[2] > 100
            assert row[0] == row[1] and 0 < row[0] < row[2]


def test_migration_backfill_equals_writer(
    services: ConnectionInfo, loaded: tuple[str, dict[str, pd.DataFrame]]
) -> None:
    """Migration 004 fills first_event_at and closed_at of existing cases from their events
    exactly as the writers set them for new cases."""
    schema, _ = loaded
    assert services.admin_url
    text = (ROOT / "sql" / "004_case_time_travel.sql").read_text(encoding="utf-8")
    cols = {"dossiers": "dossier_id", "feedback_reports": "report_id"}
    query = "SELECT {k}, first_event_at, closed_at FROM {t} ORDER BY {k}"
    with _conn(services.admin_url, schema) as conn:

        def snap(table: str) -> list[tuple[Any, ...]]:
            q = sql.SQL(query).format(k=sql.Identifier(cols[table]), t=sql.Identifier(table))
            return conn.execute(q).fetchall()

        before = {t: snap(t) for t in cols}
        with conn.transaction():
            for table in cols:
                conn.execute(
                    sql.SQL("UPDATE {} SET first_event_at = NULL, closed_at = NULL").format(
                        sql.Identifier(table)
                    )
                )
            conn.execute(text.encode())
            after = {t: snap(t) for t in cols}
    for table in cols:
        assert len(before[table]) > 100
        assert any(r[2] is not None for r in before[table])
        assert after[table] == before[table], table
