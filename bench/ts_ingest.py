"""Ingest on TimescaleDB against plain PostgreSQL, and against a peer, in one run.

python -m bench.timescale ingest [--events 600000] [--rounds 2]: pre-produce N simulated events
(all four feeds, the last few days up to now, 3 partitions per topic as the product creates
them) into fresh topics; read them once with a bare kafka-python consumer; then, interleaved
(TimescaleDB, plain, plain, TimescaleDB, ...), one `ioc ingest` process stores all of them into
a fresh schema of database ioc (raw tables are hypertables, policies on) and of database
ioc_plain (plain tables). Then the payments topic alone: `ioc ingest --feeds payments` (raw rows,
rollups, merchant days, health) and quix-streams' PostgreSQLSink (raw rows only, ON CONFLICT DO
NOTHING on event_id, its default 5 s checkpoints), both into database ioc, as ioc, peer, ioc.
CPU per event is the consumer's (wait4) plus the server backends serving its own connections
(found by its TCP ports), so other work on the shared machine is not counted.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.ingest import _wait, bare_consume
from bench.machine import describe
from bench.timescale import (
    ENGINES,
    REPO,
    BackendCpu,
    drop_schema,
    fresh_schema,
    in_database,
    log,
    services,
    write_results,
)
from ioc.app.services.state import default_cache_dir
from ioc.core.citypack import load_pack
from ioc.core.feeds import FEEDS
from simulators.engine import SimConfig, generate
from streams.transport.sinks import KafkaSink

PEERS_LOCK = REPO / "bench" / "peers.lock"
PEER_SCRIPT = REPO / "bench" / "peer_quix.py"
# quix-streams 3.28.1 looks a table's primary key up by constraint name across all schemas, so
# each peer run writes a table whose name no other schema has (not payment_events either).
PEER_TABLE = "quix_payments"
TARGETS = {"timescaledb_rate_vs_plain_min": 0.9, "ioc_vs_peer_min": 3.0}
EVENTS_PER_DAY = 100_000  # about, at the simulator's default volume


def _say(line: str) -> None:
    log("ingest", line)


def produce_recent(bootstrap: str, prefix: str, n: int, partitions: int) -> dict[str, Any]:
    """N simulated events ending before now (so that no compression or retention policy
    touches them during the runs) into the prefixed feed topics."""
    days = max(1, -(-n // EVENTS_PER_DAY))
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    cfg = SimConfig(start=start, duration=timedelta(days=days), seed=2026)
    sink = KafkaSink(bootstrap, topic_name=lambda t: prefix + t, partitions=partitions)
    sink.ensure_topics(f.topic for f in FEEDS)
    t0 = time.monotonic()
    per_topic: dict[str, int] = {}
    try:
        for _, _, topic, key, value, _ in itertools.islice(generate(cfg, load_pack("halong")), n):
            sink.send(topic, key, value)
            per_topic[topic] = per_topic.get(topic, 0) + 1
    finally:
        sink.close()
    sent = sum(per_topic.values())
    return {
        "events": sent,
        "by_topic": per_topic,
        "start": start.isoformat(),
        "seconds": round(time.monotonic() - t0, 1),
    }


def peer_python() -> Path:
    """The peers' interpreter: a venv of its own under the cache, built once per bench/peers.lock
    (hashes required, no resolution), so the product's .venv and lock are untouched."""
    digest = hashlib.sha256(PEERS_LOCK.read_bytes()).hexdigest()[:16]
    home = default_cache_dir(os.environ) / "bench-peers" / digest
    python = home / "bin" / "python"
    if (home / ".installed").is_file() and python.is_file():
        return python
    uv = Path(sys.executable).with_name("uv")
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    _say(f"installing the peers from {PEERS_LOCK.name} into {home}")
    subprocess.run([str(uv), "venv", "-q", "--python", str(base), str(home)], check=True)  # noqa: S603
    subprocess.run(  # noqa: S603 - our argv
        [
            str(uv),
            "pip",
            "install",
            "-q",
            "--python",
            str(python),
            "--require-hashes",
            "--no-deps",
            "-r",
            str(PEERS_LOCK),
        ],
        check=True,
    )
    (home / ".installed").write_text(digest + "\n")
    return python


# Engine variants: the database, and SQL run on a fresh schema after its migrations.
RAW = ("dossier_events", "payment_events", "feedback_events", "air_quality_readings")
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "timescaledb": (ENGINES["timescaledb"], []),
    "plain": (ENGINES["plain"], []),
    # create_hypertable's default index on the time column alone (what sql/001 left before
    # sql/012 dropped it), and the schema without it whatever the migrations say.
    "timescaledb_time_index": (
        ENGINES["timescaledb"],
        [f"CREATE INDEX IF NOT EXISTS {t}_event_time_idx ON {t} (event_time DESC)" for t in RAW],
    ),
    "timescaledb_no_time_index": (
        ENGINES["timescaledb"],
        [f"DROP INDEX IF EXISTS {t}_event_time_idx" for t in RAW],
    ),
}


def _per_event(out: dict[str, Any], events: int, consumer_cpu_s: float, backend_s: float) -> None:
    n = max(1, events)
    out["cpu_us_per_event"] = {
        "consumer": round(1e6 * consumer_cpu_s / n, 1),
        "postgres_backends": round(1e6 * backend_s / n, 1),
        "total": round(1e6 * (consumer_cpu_s + backend_s) / n, 1),
    }


def run_ioc(info: Any, database: str, schema: str, prefix: str, feeds: str) -> dict[str, Any]:
    """One `ioc ingest --stop-when-idle 3` process over the pre-produced topics."""
    metrics = Path(tempfile.mkstemp(suffix=".json")[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_DATABASE_URL=in_database(str(info.writer_url), database),
        IOC_DB_SCHEMA=schema,
        IOC_TOPIC_PREFIX=prefix,
        IOC_KAFKA_BOOTSTRAP=str(info.kafka_bootstrap),
        IOC_CONSUMER_GROUP=f"bench-ts-{uuid.uuid4().hex[:8]}",
    )
    cmd = [sys.executable, "-m", "ioc.app.cli", "ingest", "--stop-when-idle", "3", "--feeds", feeds]
    cmd += ["--metrics-out", str(metrics)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)  # noqa: S603 - our argv
    with BackendCpu(in_database(str(info.admin_url), database), proc.pid) as backends:
        rc, rss, cpu_s = _wait(proc, 1800)
    if rc != 0:
        raise SystemExit(f"bench.timescale: ioc ingest failed ({rc})")
    part: dict[str, Any] = json.loads(metrics.read_text())
    metrics.unlink()
    out = {k: part[k] for k in ("records", "inserted", "duplicates", "dead_letters", "busy_s")}
    out["events_per_s"] = round(part["events_per_s"])
    out["max_rss_mb"] = round(rss, 1)
    out["consumer_cpu_s"] = round(cpu_s, 2)
    out["postgres_backend_cpu_s"] = backends.seconds
    out["postgres_backends"] = backends.backends
    _per_event(out, int(part["records"]), cpu_s, backends.seconds)
    return out


def run_peer(info: Any, python: Path, schema: str, topic: str, events: int) -> dict[str, Any]:
    """quix-streams' PostgreSQLSink over one topic, into `schema` of database ioc."""
    admin = in_database(str(info.admin_url), ENGINES["timescaledb"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env["IOC_PEER_PG"] = admin
    cmd = [str(python), str(PEER_SCRIPT), "--bootstrap", str(info.kafka_bootstrap)]
    table = f"{PEER_TABLE}_{schema.rsplit('_', 1)[-1]}"
    cmd += ["--topic", topic, "--events", str(events), "--schema", schema, "--table", table]
    cmd += ["--group", f"bench-quix-{uuid.uuid4().hex[:8]}"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE)  # noqa: S603
    with BackendCpu(admin, proc.pid) as backends:
        out_bytes = proc.stdout.read() if proc.stdout else b""
        rc, rss, cpu_s = _wait(proc, 1800)
    if rc != 0:
        raise SystemExit(f"bench.timescale: the quix-streams peer failed ({rc})")
    out: dict[str, Any] = json.loads(out_bytes.decode().strip().splitlines()[-1])
    with psycopg.connect(admin) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        ).fetchone()
    out["rows_stored"] = int(row[0]) if row else 0
    out["max_rss_mb"] = round(rss, 1)
    out["consumer_cpu_s"] = round(cpu_s, 2)
    out["postgres_backend_cpu_s"] = backends.seconds
    out["postgres_backends"] = backends.backends
    _per_event(out, events, cpu_s, backends.seconds)
    return out


def _peer_schema(admin_url: str) -> str:
    name = f"bench_quix_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _delete_topics(bootstrap: str, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-timescale")
    try:
        admin.delete_topics([prefix + f.topic for f in FEEDS])
    except Exception as exc:  # leftover topics are harmless: say so and go on
        _say(f"could not delete topics {prefix}*: {exc}")
    finally:
        admin.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timescale ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each engine")
    parser.add_argument(
        "--engines",
        default="timescaledb,plain",
        help=f"comma list of {', '.join(VARIANTS)}; each round runs them all, in turn forward "
        "and backward",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the quix-streams peer")
    parser.add_argument(
        "--peer-rounds", type=int, default=1, help="peer runs, each between two ioc runs"
    )
    args = parser.parse_args(argv)
    info = services()
    python = None if args.no_peer else peer_python()
    bootstrap = str(info.kafka_bootstrap)
    prefix = f"benchts{uuid.uuid4().hex[:8]}."
    topics = [prefix + f.topic for f in FEEDS]
    payments_topic = prefix + "ioc.payments.v1"
    schemas: list[tuple[str, str]] = []  # (database, schema) to drop

    def schema_in(engine: str, kind: str = "ioc") -> str:
        database, setup = VARIANTS[engine]
        admin = in_database(str(info.admin_url), database)
        name = _peer_schema(admin) if kind == "peer" else fresh_schema(admin, "bench_ts")
        schemas.append((database, name))
        if setup and kind != "peer":
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(name)))
                for stmt in setup:
                    conn.execute(stmt.encode())
        return name

    engines_wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines_wanted if e not in VARIANTS]
    if unknown or "plain" not in engines_wanted:
        parser.error(f"--engines: unknown {unknown}; plain must be one of them")
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines_wanted}
    payments: dict[str, list[dict[str, Any]]] = {"ioc_ingest": [], "quix_streams": []}
    try:
        _say(f"producing {args.events:,} events to {prefix}*")
        produced = produce_recent(bootstrap, prefix, args.events, args.partitions)
        _say(f"produced {produced}")
        n_payments = produced["by_topic"]["ioc.payments.v1"]
        bare = bare_consume(bootstrap, topics, produced["events"])
        _say(f"bare read, all topics: {bare}")
        bare_payments = bare_consume(bootstrap, [payments_topic], n_payments)
        _say(f"bare read, payments: {bare_payments}")
        for r in range(args.rounds):
            order = engines_wanted if r % 2 == 0 else list(reversed(engines_wanted))
            for engine in order:
                res = run_ioc(info, VARIANTS[engine][0], schema_in(engine), prefix, "all")
                res["order"] = sum(len(v) for v in runs.values()) + 1
                runs[engine].append(res)
                _say(f"{engine}: {res}")
        if python is not None:
            for who in ["ioc_ingest"] + ["quix_streams", "ioc_ingest"] * args.peer_rounds:
                if who == "ioc_ingest":
                    res = run_ioc(
                        info, ENGINES["timescaledb"], schema_in("timescaledb"), prefix, "payments"
                    )
                else:
                    peer_schema = schema_in("timescaledb", "peer")
                    res = run_peer(info, python, peer_schema, payments_topic, n_payments)
                payments[who].append(res)
                _say(f"payments, {who}: {res}")
        bare_after = bare_consume(bootstrap, topics, produced["events"])
        _say(f"bare read again, all topics: {bare_after}")
    finally:
        for database, name in schemas:
            drop_schema(in_database(str(info.admin_url), database), name)
        _delete_topics(bootstrap, prefix)

    result: dict[str, Any] = {
        "benchmark": "timescale_ingest",
        "machine": describe(),
        "command": "python -m bench.timescale ingest " + " ".join(argv),
        "targets": TARGETS,
        "produce": produced,
        "bare_read": {
            "all_topics": bare,
            "payments": bare_payments,
            "all_topics_after": bare_after,
        },
    }
    met: dict[str, Any] = {"timescaledb_within_10_percent": None, "ioc_at_least_3x_peer": None}
    if args.rounds:

        def cpu_mean(rs: list[dict[str, Any]], key: str) -> float:
            return round(_mean([r["cpu_us_per_event"][key] for r in rs]), 1)

        engines = {
            e: {
                "database": VARIANTS[e][0],
                "events_per_s_mean": round(_mean([r["events_per_s"] for r in rs])),
                "cpu_us_per_event_mean": {
                    k: cpu_mean(rs, k) for k in ("consumer", "postgres_backends", "total")
                },
                "runs": rs,
            }
            for e, rs in runs.items()
        }
        result["engines"] = engines
        plain = engines["plain"]
        for e in engines_wanted:
            if e == "plain":
                continue
            mine = engines[e]
            rate = mine["events_per_s_mean"] / plain["events_per_s_mean"]
            result[f"{e}_vs_plain"] = {
                "rate_ratio_of_means": round(rate, 3),
                "rate_ratio_per_round": [
                    round(t["events_per_s"] / p["events_per_s"], 3)
                    for t, p in zip(runs[e], runs["plain"], strict=True)
                ],
                "postgres_cpu_ratio": round(
                    mine["cpu_us_per_event_mean"]["postgres_backends"]
                    / plain["cpu_us_per_event_mean"]["postgres_backends"],
                    3,
                ),
                "total_cpu_ratio": round(
                    mine["cpu_us_per_event_mean"]["total"]
                    / plain["cpu_us_per_event_mean"]["total"],
                    3,
                ),
            }
        if "timescaledb" in engines:
            met["timescaledb_within_10_percent"] = (
                result["timescaledb_vs_plain"]["rate_ratio_of_means"]
                >= TARGETS["timescaledb_rate_vs_plain_min"]
            )
    if payments["quix_streams"]:
        ioc_rate = _mean([r["events_per_s"] for r in payments["ioc_ingest"]])
        peer_rate = _mean([r["events_per_s"] for r in payments["quix_streams"]])
        peer_cpu = _mean([r["cpu_us_per_event"]["total"] for r in payments["quix_streams"]])
        iocs = payments["ioc_ingest"]
        # Each peer run against the mean of the two ioc runs around it.
        sandwiches = [
            round(
                _mean([iocs[i]["events_per_s"], iocs[i + 1]["events_per_s"]]) / p["events_per_s"], 2
            )
            for i, p in enumerate(payments["quix_streams"])
        ]
        result["payments_vs_peer"] = {
            "events": n_payments,
            "peer": "quixstreams 3.28.1 PostgreSQLSink (bench/peers.lock), defaults but "
            "primary_key_columns='event_id', on_conflict_do_nothing=True; raw rows only",
            "ioc_ingest": payments["ioc_ingest"],
            "quix_streams": payments["quix_streams"],
            "ioc_ingest_rate_mean": round(ioc_rate),
            "quix_streams_rate_mean": round(peer_rate),
            "ratio_ioc_to_peer": round(ioc_rate / peer_rate, 2),
            "ratio_per_peer_run": sandwiches,
            "cpu_ratio_peer_to_ioc": round(
                peer_cpu / _mean([r["cpu_us_per_event"]["total"] for r in iocs]), 2
            ),
        }
        met["ioc_at_least_3x_peer"] = ioc_rate / peer_rate >= TARGETS["ioc_vs_peer_min"]
    result["met"] = met
    result["notes"] = [
        "events_per_s: `ioc ingest --metrics-out` (records / first record polled to last offset "
        "commit), one process; the peer's: first record seen to the end of app.run (its last "
        "checkpoint: sink flushed and offsets committed).",
        "cpu_us_per_event: consumer process CPU (wait4) + CPU of the PostgreSQL backends "
        "serving that process's connections (sampled every 0.2 s from /proc). Server-wide "
        "work (WAL writer, checkpoints) and the broker are not included: the machine is "
        "shared and other work would be counted with them.",
        "Each round runs every engine, forward then backward (ABBA...), so that drift in the "
        "machine's load falls on all; rate_ratio_per_round pairs the i-th run of each.",
    ]
    path = write_results("timescale_ingest.json", result)
    _say(f"results in {path}")
    print(json.dumps(result["met"]))
    return 0
