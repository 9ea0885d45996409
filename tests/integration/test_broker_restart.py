"""Kafka stopped (SIGTERM) for ~20 s while `ioc simulate --to kafka` and `ioc ingest` run: the
simulator waits with its place kept and carries on, the ingest reconnects, and the topics and
tables end exactly as the simulator's own NDJSON output for the same seed says (each event
once, each entity's events in order).

The broker is this test's own (data dir under tmp_path, its own free port), so stopping it
disturbs no other test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from psycopg import sql

from ioc.app.services import manager
from ioc.app.services.state import ConnectionInfo, ServiceError, default_cache_dir
from ioc.core.contracts import VN_TZ
from ioc.core.db.migrate import migrate
from tests.support.ingest_run import (
    RAW_TABLES,
    REPO,
    count_raw,
    ingest_env,
    read_topics,
    start_ingest,
    topic_prefix,
    wait_for,
)

# A busy morning three days ago: recent enough that TimescaleDB's policies (compress after 7
# days, drop after 400) leave the rows alone while the test counts them.
_MORNING = (datetime.now(VN_TZ) - timedelta(days=3)).replace(hour=6, minute=0, second=0)
SIM_ARGS = ["--seed", "29", "--start", _MORNING.strftime("%Y-%m-%dT%H:%M%z"), "--duration", "1d"]
# ~124,000 events over one simulated day, at 2,000x: a stream of ~45 s
# around the outage, busy enough to fill the producer's queue of unacknowledged records.
SPEED = "2000"
OUTAGE_S = 20.0
RESUME_BOUND_S = 15.0


def _start_kafka(root: Path) -> ConnectionInfo:
    """`ioc services up` for kafka alone in `root`.

    Retried when start-up "exited": right after launch the JVM's /proc/<pid>/cmdline can read
    empty for a moment (seen here about one start in five), which ioc.app.services takes for a dead
    broker and gives up on. A JVM of ours left behind then is killed by its pid.
    """
    for attempt in range(3):
        try:
            info, started = manager.up(root, default_cache_dir(os.environ), ["kafka"], log=print)
        except ServiceError as exc:
            if "exited during start-up" not in str(exc) or attempt == 2:
                raise
            print(f"kafka start-up misread ({exc}); starting again")
            _kill_ours(root)
            continue
        assert started == ["kafka"] and info.kafka_bootstrap
        return info
    raise AssertionError("unreachable")


def _kill_ours(root: Path) -> None:
    """SIGKILL brokers running with this test's own server.properties (no one else's)."""
    config = str(root / "kafka" / "server.properties").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if config in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A broker of this test alone, started like `ioc services up` starts the shared one."""
    root = tmp_path / "services"
    try:
        info = _start_kafka(root)
        assert info.kafka_bootstrap
        yield info.kafka_bootstrap, root
    finally:
        with contextlib.suppress(Exception):
            manager.down(root, ["kafka"], log=print)
        _kill_ours(root)
        shutil.rmtree(root, ignore_errors=True)


def _cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from ioc.app.cli import main; sys.exit(main())",
        *args,
    ]


def _expected(tmp_path: Path) -> list[bytes]:
    """The simulator's events for SIM_ARGS, in emission order, from its NDJSON output."""
    out = tmp_path / "expected.ndjson"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    done = subprocess.run(
        _cli("simulate", *SIM_ARGS, "--speed", "max", "--to", f"file:{out}", "--quiet"),
        cwd=REPO, env=env, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return out.read_bytes().splitlines()


def _check_topics(records: list[Any], expected: list[bytes]) -> None:
    """Each event exactly once in Kafka, and each entity's events in the order generated."""
    index = {value: i for i, value in enumerate(expected)}
    assert len(index) == len(expected), "the simulator repeated a value"
    counts = Counter(r.value for r in records)
    doubled = [v for v, n in counts.items() if n > 1]
    assert not doubled, f"{len(doubled)} events twice in Kafka, e.g. {doubled[0][:120]!r}"
    missing = [v for v in expected if v not in counts]
    assert not missing, f"{len(missing)} events never reached Kafka, e.g. {missing[0][:120]!r}"
    assert len(records) == len(expected)
    by_key: dict[tuple[str, bytes], list[tuple[int, int, int]]] = defaultdict(list)
    for r in records:
        by_key[(r.topic, r.key)].append((r.partition, r.offset, index[r.value]))
    for key, rows in by_key.items():
        assert len({p for p, _, _ in rows}) == 1, key
        order = [i for _, _, i in sorted(rows)]
        assert order == sorted(order), f"{key} out of order in Kafka"


def _check_tables(admin: str, schema: str, expected: list[bytes]) -> None:
    """Raw tables hold exactly the simulator's events; the payment rollups count each once."""
    events = [msgspec.json.decode(v) for v in expected]
    ids: dict[str, set[str]] = defaultdict(set)
    rollup: dict[str, list[int]] = {}
    for ev in events:
        ids[ev["schema"]].add(ev["event_id"])
        if ev["schema"] == "ioc.payments.v1" and ev["status"] == "succeeded":
            row = rollup.setdefault(ev["ward_code"], [0, 0])
            row[0] += 1
            row[1] += int(ev["amount_vnd"])
    with psycopg.connect(admin) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for topic, table in RAW_TABLES.items():
            query = sql.SQL("SELECT event_id FROM {}").format(sql.Identifier(table))
            got = [str(r[0]) for r in conn.execute(query).fetchall()]
            assert len(got) == len(set(got)) == len(ids[topic]), table
            assert set(got) == ids[topic], table
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone() == (0,)
        stored = {
            str(w): [int(n), int(a)]
            for w, n, a in conn.execute(
                "SELECT ward_code, sum(transactions), sum(amount_vnd) FROM payment_stats_hourly "
                "GROUP BY ward_code"
            ).fetchall()
        }
        assert stored == rollup
        totals = conn.execute("SELECT feed, events_total FROM feed_health").fetchall()
        assert sum(int(n) for _, n in totals) == len(events)


def _first_growth_after(admin: str, schema: str, since: float, timeout: float) -> float:
    """Seconds from `since` until the raw tables grow again."""
    base = count_raw(admin, schema)
    wait_for(lambda: count_raw(admin, schema) > base, timeout, "the ingest to resume", every=0.2)
    return time.monotonic() - since


def test_broker_restart_mid_stream_loses_and_doubles_nothing(
    services: ConnectionInfo,
    pg_admin_url: str,
    pg_schema: str,
    private_kafka: tuple[str, Path],
    tmp_path: Path,
) -> None:
    assert services.writer_url
    bootstrap, root = private_kafka
    expected = _expected(tmp_path)
    migrate(pg_admin_url, schema=pg_schema)
    sim_log, ingest_log = tmp_path / "simulate.log", tmp_path / "ingest.log"
    with topic_prefix(bootstrap) as prefix:
        env = ingest_env(
            db_url=services.writer_url, schema=pg_schema, prefix=prefix, bootstrap=bootstrap,
            group=f"restart-{uuid.uuid4().hex[:8]}",
        )  # fmt: skip
        ingest = start_ingest(env, ingest_log)
        with sim_log.open("wb") as fh:
            sim = subprocess.Popen(
                _cli("simulate", *SIM_ARGS, "--speed", SPEED, "--to", "kafka",
                     "--kafka-patience", "120"),
                cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            timings = _outage(
                pg_admin_url, pg_schema, (bootstrap, root), (sim, sim_log), len(expected)
            )
            assert sim.wait(timeout=120) == 0, sim_log.read_text(errors="replace")[-3000:]
            records = read_topics(bootstrap, [prefix + t for t in RAW_TABLES], len(expected))
        finally:
            for proc in (sim, ingest):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (sim, ingest):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=30)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    sim_text = sim_log.read_text(errors="replace")
    print(f"simulator:\n{sim_text[:3000]}")
    print(f"broker back -> ingest resumed {timings['resumed']:.1f} s, "
          f"caught up {timings['caught_up']:.1f} s")  # fmt: skip
    assert f"kafka: broker unreachable at {bootstrap}, waiting (" in sim_text
    assert f"kafka: broker at {bootstrap} is back after " in sim_text
    assert "Traceback" not in sim_text
    assert ingest.returncode == 0, ingest_log.read_text(errors="replace")[-3000:]
    _check_topics([r for r in records if r.topic.startswith(prefix)], expected)
    _check_tables(pg_admin_url, pg_schema, expected)
    assert timings["resumed"] <= RESUME_BOUND_S, timings


def _outage(
    admin: str,
    schema: str,
    kafka: tuple[str, Path],
    simulator: tuple[subprocess.Popen[bytes], Path],
    total: int,
) -> dict[str, float]:
    """Stop the broker once rows flow; start it again after OUTAGE_S, and once the simulator
    has had to wait (it first fills its queue of unacknowledged records); time the catch-up."""
    bootstrap, root = kafka
    sim, sim_log = simulator
    wait_for(lambda: count_raw(admin, schema) > 20_000, 90, "the first rows", every=0.2)
    before = count_raw(admin, schema)
    manager.down(root, ["kafka"], log=print)
    stopped = time.monotonic()
    time.sleep(OUTAGE_S)
    wait_for(lambda: b"waiting (" in sim_log.read_bytes(), 30, "the simulator to wait", every=0.2)
    assert sim.poll() is None, "ioc simulate ended while the broker was down"
    info = _start_kafka(root)
    back = time.monotonic()
    assert info.kafka_bootstrap == bootstrap, "the broker came back on another port"
    print(f"broker down {back - stopped:.1f} s ({before:,} of {total:,} rows stored before)")
    assert before < total / 2, "the outage came too late to be mid-stream"
    resumed = _first_growth_after(admin, schema, back, 120)
    wait_for(lambda: count_raw(admin, schema) >= total, 180, "the ingest to catch up", every=0.2)
    return {"resumed": resumed, "caught_up": time.monotonic() - back}
