"""Record then replay through the real broker: `ioc record` captures exactly the simulator's
stream (poison included), and `ioc replay` into fresh topics - or the in-process bus - gives a
stream with the same digest; a retimed replay shifts every timestamp by one offset."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from kafka import KafkaConsumer
from kafka.structs import TopicPartition as KafkaTP
from psycopg import sql

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from ioc.core.contracts import Event
from ioc.core.db.migrate import migrate
from ioc.core.feeds import FEEDS
from simulators.engine import SimConfig, generate
from simulators.scenarios import parse_scenario
from streams.replay.player import replay
from streams.replay.recording import Recorded, StreamDigest, open_recording
from streams.transport.bus import Bus
from streams.transport.sinks import BusSink, KafkaSink

ROOT = Path(__file__).resolve().parents[2]
BASES = [f.topic for f in FEEDS]
START = datetime(2025, 12, 10, tzinfo=UTC)


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


def env_for(services: ConnectionInfo, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    assert services.kafka_bootstrap
    env.update(IOC_KAFKA_BOOTSTRAP=services.kafka_bootstrap, IOC_TOPIC_PREFIX=prefix, **extra)
    return env


def read_topics(bootstrap: str, prefix: str) -> list[tuple[str, int, bytes | None, bytes]]:
    """Every record of the prefixed feed topics: (base topic, partition, key, value)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    tps = []
    for base in BASES:
        parts = consumer.partitions_for_topic(prefix + base) or set()
        tps.extend(KafkaTP(prefix + base, p) for p in sorted(parts))
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    consumer.seek_to_beginning(*tps)
    out: list[tuple[str, int, bytes | None, bytes]] = []
    while any(consumer.position(tp) < ends[tp] for tp in tps):
        for tp, batch in consumer.poll(timeout_ms=1000).items():
            out.extend((tp.topic[len(prefix) :], tp.partition, r.key, r.value) for r in batch)
    consumer.close()
    return out


def digest(items: list[tuple[str, int, bytes | None, bytes]]) -> str:
    d = StreamDigest()
    for topic, _p, key, value in items:
        d.add(topic, key, value)
    return d.hexdigest()


def test_record_then_replay_gives_the_same_stream(services: ConnectionInfo, tmp_path: Path) -> None:
    bootstrap = services.kafka_bootstrap
    assert bootstrap
    run = uuid.uuid4().hex[:8]
    source_prefix = f"rec{run}."
    config = SimConfig(
        start=START,
        duration=timedelta(hours=8),
        seed=99,
        scenarios=(parse_scenario("poison:after=1h,every=3h"),),
    )
    items = list(generate(config, load_pack("halong")))
    sink = KafkaSink(bootstrap, topic_name=lambda t: source_prefix + t)
    sink.ensure_topics(BASES)
    for _t, _i, topic, key, value, _w in items:
        sink.send(topic, key, value)
    sink.close()
    want = digest([(topic, 0, key, value) for _t, _i, topic, key, value, _w in items])
    poison = sum(1 for it in items if it[1] == 4)
    assert poison > 10 and len(items) > 5000

    # ioc record: every record of the topics, byte for byte.
    path = tmp_path / "run.ndjson.gz"
    done = cli(env_for(services, source_prefix), "record", str(path), "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    recording = open_recording(path)
    records = list(recording.records())
    assert len(records) == len(items)
    assert recording.trailer_digest == want
    assert recording.header.source == "kafka" and recording.header.topic_prefix == source_prefix
    # Offsets, partitions and Kafka timestamps were kept as the broker had them.
    on_broker = read_topics(bootstrap, source_prefix)
    assert sorted((r.topic, r.partition, r.value) for r in records) == sorted(
        (t, p, v) for t, p, _k, v in on_broker
    )
    assert all(r.timestamp_ms > 0 for r in records)

    # A time window keeps exactly the records whose time is inside it.
    cut = tmp_path / "window.ndjson.gz"
    lo, hi = START + timedelta(hours=2), START + timedelta(hours=5)
    done = cli(
        env_for(services, source_prefix),
        "record", str(cut), "--from", lo.isoformat(), "--to", hi.isoformat(), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    inside = [r for r in records if lo.timestamp() * 1000 <= r.time_ms < hi.timestamp() * 1000]
    windowed = list(open_recording(cut).records())
    assert 0 < len(windowed) == len(inside) < len(records)

    # ioc replay into fresh topics: the same stream.
    replay_prefix = f"rep{run}."
    done = cli(env_for(services, replay_prefix), "replay", str(path), "--to", "kafka", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"replayed {len(items):,} records" in done.stdout
    back = read_topics(bootstrap, replay_prefix)
    assert len(back) == len(items)
    assert digest(back) == want
    # Each record went back to the partition it was recorded from.
    assert sorted((t, p, v) for t, p, _k, v in back) == sorted(
        (r.topic, r.partition, r.value) for r in records
    )

    # Into the in-process bus: the same stream too.
    bus = Bus()
    summary = replay(open_recording(path).records(), BusSink(bus), speed=None)
    assert summary.records == len(items)
    consumer = bus.consumer("check", BASES)
    got = []
    while batch := consumer.poll(max_records=10_000):
        got.extend((r.topic, r.partition, r.key, r.value) for r in batch)
    assert digest(got) == want

    # Retimed: every event moved by one shift (first record at the given time), poison as is.
    retime_prefix = f"ret{run}."
    target = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    done = cli(
        env_for(services, retime_prefix),
        "replay", str(path), "--to", "kafka", "--retime", target.isoformat(), "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    shifted = read_topics(bootstrap, retime_prefix)
    shift = target - datetime.fromtimestamp(records[0].time_ms / 1000, UTC)
    assert_retimed(records, shifted, shift)
    drop_topics(bootstrap, [source_prefix, replay_prefix, retime_prefix])


def drop_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Best effort: the topics have unique names, so one left behind harms nothing."""
    with contextlib.suppress(Exception):
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.delete_topics([p + b for p in prefixes for b in BASES])
        admin.close()


def assert_retimed(
    records: list[Recorded], shifted: list[tuple[str, int, bytes | None, bytes]], shift: Any
) -> None:
    typed = msgspec.json.Decoder(Event)
    by_id: dict[str, Any] = {}
    raw_before: list[bytes] = []
    for r in records:
        try:
            ev = typed.decode(r.value)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            raw_before.append(r.value)
            continue
        by_id[ev.event_id + type(ev).__name__] = ev
    raw_after: list[bytes] = []
    moved = 0
    for _t, _p, _k, value in shifted:
        try:
            ev = typed.decode(value)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            raw_after.append(value)
            continue
        old = by_id.pop(ev.event_id + type(ev).__name__)
        for f in msgspec.structs.fields(ev):
            a, b = getattr(old, f.name), getattr(ev, f.name)
            if isinstance(a, datetime):
                assert b - a == shift, f.name
                moved += 1
            else:
                assert a == b, f.name
    assert not by_id, "every event came back once"
    assert sorted(raw_after) == sorted(raw_before) and raw_before
    assert moved > len(records)


def test_replay_to_bus_ingests_the_scenario(
    services: ConnectionInfo, pg_admin_url: str, pg_schema: str
) -> None:
    """`ioc replay scenario:NAME --to bus` needs no Kafka: it ingests into the database."""
    migrate(pg_admin_url, schema=pg_schema)
    assert services.writer_url and services.reader_url
    env = env_for(services, "", IOC_DATABASE_URL=services.writer_url, IOC_DB_SCHEMA=pg_schema)
    env.pop("IOC_KAFKA_BOOTSTRAP")
    done = cli(env, "replay", "scenario:counter_outage", "--to", "bus", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    from simulators.recordings import path_of

    recording = open_recording(path_of("counter_outage"))
    total = sum(1 for _ in recording.records())
    with psycopg.connect(services.reader_url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(pg_schema)))
        stored = 0
        for table in (
            "dossier_events",
            "payment_events",
            "feedback_events",
            "air_quality_readings",
        ):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            stored += int((row.fetchone() or (0,))[0])
        dead = int((conn.execute("SELECT count(*) FROM dead_letters").fetchone() or (0,))[0])
    assert dead > 0 and stored > 0
    assert stored + dead == total
    assert f"ingested {total:,} records into schema {pg_schema} ({dead:,} dead letters)" in (
        done.stdout
    )
