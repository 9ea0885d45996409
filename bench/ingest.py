"""Benchmark of the consumer step: Kafka -> PostgreSQL ingest against a bare kafka-python read.

Run: python -m bench.ingest [--events N] (needs `ioc services up`; writes
bench/results/ingest.json). In one run: pre-produce N simulated events with the simulator's
Kafka sink, then (a) a bare consumer that only reads them, (b) `ioc ingest` storing them; then,
at a steady 2,000 events/s, the delay from produce to visible in the payments KPI query.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import cpu
from bench.machine import describe
from ioc.app.services.state import read_connection_info
from ioc.core.citypack import load_pack
from ioc.core.contracts import PaymentEvent, encode_event
from ioc.core.db.migrate import migrate
from ioc.core.feeds import FEEDS
from simulators.engine import SimConfig, generate
from streams.transport.sinks import KafkaSink

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "ingest.json"
TARGETS = {"ingest_events_per_s": 20_000, "ratio_to_bare": 0.5, "max_rss_mb": 300, "p99_s": 2.0}
START = datetime(2025, 1, 6, tzinfo=UTC)


def log(line: str) -> None:
    print(f"bench.ingest: {line}", file=sys.stderr, flush=True)


def _rss_mb(usage: Any) -> float:
    return float(usage.ru_maxrss) / 1024  # Linux reports kilobytes


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, float]:
    """Exit status, max RSS (MB) and CPU seconds of a child, from wait4."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, _rss_mb(usage), usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"bench.ingest: child {proc.args!r} timed out")
        time.sleep(0.05)


def produce(bootstrap: str, prefix: str, n: int, partitions: int = 3) -> dict[str, Any]:
    """N simulated events into the prefixed feed topics through the simulator's Kafka sink."""
    days = max(1, -(-n // 100_000))
    cfg = SimConfig(start=START, duration=timedelta(days=days), seed=2025)
    sink = KafkaSink(bootstrap, topic_name=lambda t: prefix + t, partitions=partitions)
    sink.ensure_topics(f.topic for f in FEEDS)
    t0 = time.monotonic()
    sent = 0
    try:
        for _, _, topic, key, value, _ in itertools.islice(generate(cfg, load_pack("halong")), n):
            sink.send(topic, key, value)
            sent += 1
            if not sent % 200_000:
                log(f"produced {sent:,}")
    finally:
        sink.close()
    seconds = time.monotonic() - t0
    return {"events": sent, "seconds": round(seconds, 2), "events_per_s": round(sent / seconds)}


def bare_consume(bootstrap: str, topics: list[str], n: int) -> dict[str, Any]:
    """This file run as `--bare` in a child: read N records, touch nothing else."""
    cmd = [sys.executable, "-m", "bench.ingest", "--bare", bootstrap, str(n), *topics]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE)  # noqa: S603 - our argv
    out = proc.stdout.read() if proc.stdout else b""
    rc, rss, cpu_s = _wait(proc, 900)
    if rc != 0:
        raise SystemExit(f"bench.ingest: bare consumer failed ({rc})")
    result: dict[str, Any] = json.loads(out)
    result["max_rss_mb"] = round(rss, 1)
    result["consumer_cpu_s"] = round(cpu_s, 2)
    return result


def _bare_child(bootstrap: str, n: int, topics: list[str]) -> None:
    from kafka import KafkaConsumer

    from streams.transport.kafka_source import CONSUMER_TUNING

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=f"bench-bare-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **CONSUMER_TUNING,
    )
    consumer.subscribe(topics)
    got = 0
    first = 0.0
    nbytes = 0
    while got < n:
        for records in consumer.poll(timeout_ms=200, max_records=5000).values():
            if not first:
                first = time.monotonic()
            got += len(records)
            nbytes += sum(len(r.value) for r in records)
    seconds = time.monotonic() - first
    consumer.close()
    print(json.dumps({"events": got, "bytes": nbytes, "seconds": round(seconds, 3),
                      "events_per_s": round(got / seconds)}))  # fmt: skip


def _ingest_env(info: Any, schema: str, prefix: str, group: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_DATABASE_URL=str(info.writer_url),
        IOC_DB_SCHEMA=schema,
        IOC_TOPIC_PREFIX=prefix,
        IOC_KAFKA_BOOTSTRAP=str(info.kafka_bootstrap),
        IOC_CONSUMER_GROUP=group,
    )
    return env


def full_ingest(
    info: Any,
    schema: str,
    prefix: str,
    profile: Path | None,
    max_batch: int,
    spy: Path | None = None,
    members: int = 1,
) -> dict[str, Any]:
    """`ioc ingest --stop-when-idle` over the pre-produced topics into a fresh schema, run as
    `members` processes of one consumer group (the README's way to scale); the first member is
    the one profiled."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    env = _ingest_env(info, schema, prefix, group)
    runs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for i in range(members):
        metrics = Path(tempfile.mkstemp(suffix=".json")[1])
        cmd = _profiled(profile, spy) if i == 0 else [sys.executable, "-m"]
        cmd += ["ioc.app.cli", "ingest", "--stop-when-idle", "3", "--metrics-out", str(metrics)]
        cmd += ["--max-batch", str(max_batch)]
        runs.append((subprocess.Popen(cmd, cwd=REPO, env=env), metrics))  # noqa: S603 - our argv
    parts: list[dict[str, Any]] = []
    for proc, metrics in runs:
        rc, rss, cpu_s = _wait(proc, 1800)
        if rc != 0:
            raise SystemExit(f"bench.ingest: ioc ingest failed ({rc})")
        part: dict[str, Any] = json.loads(metrics.read_text())
        metrics.unlink()
        part["max_rss_mb"] = round(rss, 1)
        part["consumer_cpu_s"] = round(cpu_s, 2)
        parts.append(part)
    return _combine(parts)


def _profiled(profile: Path | None, spy: Path | None) -> list[str]:
    """The start of a member's command line, under py-spy and/or pyinstrument if asked."""
    cmd = [sys.executable]
    if spy is not None:
        # Raw collapsed stacks, one line per distinct stack with its sample count, threads apart.
        spy_bin = str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy_bin).is_file():
            raise SystemExit(
                f"bench.ingest: --py-spy needs {spy_bin}; run `make test` set-up first"
            )
        cmd = [spy_bin, "record", "--format", "raw", "--threads", "-r", "200", "-o", str(spy)]
        cmd += ["--", sys.executable]
    if profile is not None:
        cmd += ["-m", "pyinstrument", "-r", "text", "-o", str(profile)]
    return [*cmd, "-m"]


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result for the group: counts and seconds summed, the rate over the group's span (first
    record polled by any member to the last offset commit of any; CLOCK_MONOTONIC is
    system-wide), memory the largest member's."""
    if len(parts) == 1:
        return parts[0]
    out: dict[str, Any] = {"members": len(parts)}
    for key in ("records", "inserted", "duplicates", "dead_letters", "batches", "consumer_cpu_s"):
        out[key] = sum(p[key] for p in parts)
    for key in ("decode_s", "store_s", "store_cpu_s", "offset_commit_s"):
        out[key] = round(sum(p[key] for p in parts), 3)
    started = [p["first_record_at"] for p in parts if p["first_record_at"] is not None]
    ended = [p["last_commit_at"] for p in parts if p["last_commit_at"] is not None]
    busy = max(ended) - min(started)
    out["wall_s"] = max(p["wall_s"] for p in parts)
    out["busy_s"] = busy
    # Records a member re-read after a rebalance are counted once: the rate is of events stored.
    out["events_per_s"] = out["inserted"] / busy
    out["max_rss_mb"] = max(p["max_rss_mb"] for p in parts)
    out["max_rss_mb_all_members"] = round(sum(p["max_rss_mb"] for p in parts), 1)
    out["per_member"] = [
        {k: p[k] for k in ("records", "events_per_s", "max_rss_mb", "consumer_cpu_s")}
        for p in parts
    ]
    return out


def cpu_per_event(phase: dict[str, Any], used: dict[str, float], seconds: float) -> dict[str, Any]:
    """Microseconds of CPU per event by component, and how many cores were busy on average."""
    n = max(1, int(phase.get("events") or phase.get("records") or 0))
    parts = {"consumer": float(phase["consumer_cpu_s"]), **{
        k.removesuffix("_s"): v for k, v in used.items()}}  # fmt: skip
    out: dict[str, Any] = {k: round(1e6 * v / n, 1) for k, v in parts.items()}
    out["total"] = round(sum(out.values()), 1)
    out["cores_busy"] = round(sum(parts.values()) / seconds, 2) if seconds else None
    return out


class _KpiPoller:
    """Reads the payments KPI (city transactions in the last hours) as fast as it can."""

    def __init__(self, reader_url: str, schema: str) -> None:
        from ioc.core.queries.payments import payment_kpis
        from ioc.core.queries.window import CITY, Window

        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self._conn = psycopg.connect(reader_url, autocommit=True)
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        wards = sorted(load_pack("halong").codes)

        def read() -> int:
            frame = payment_kpis(self._conn, wards, Window.last(3, datetime.now(UTC)))
            return int(frame.loc[CITY, "transactions"])

        self.read: Callable[[], int] = read

    def run(self) -> None:
        while not self.stop.is_set():
            n = self.read()
            self.samples.append((time.monotonic(), n))
            time.sleep(0.01)
        self._conn.close()


def latency(info: Any, schema: str, prefix: str, rate: int, seconds: float) -> dict[str, Any]:
    """Produce payments stamped now at `rate`/s; p50/p99 of produce -> visible in the KPI.

    The k-th event produced counts as visible once the KPI's transaction count reaches k:
    partitions are consumed in parallel, so this is exact up to the reordering of one poll.
    """
    from kafka import KafkaProducer

    log_path = Path(tempfile.mkstemp(suffix=".log")[1])
    env = _ingest_env(info, schema, prefix, f"bench-lat-{uuid.uuid4().hex[:8]}")
    with log_path.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.app.cli", "ingest"], cwd=REPO, env=env, stderr=fh
        )
    try:
        deadline = time.monotonic() + 60
        while b"partitions assigned" not in log_path.read_bytes().replace(b"0 partitions", b""):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"bench.ingest: latency consumer did not start; see {log_path}")
            time.sleep(0.1)
        poller = _KpiPoller(str(info.reader_url), schema)
        thread = threading.Thread(target=poller.run, daemon=True)
        thread.start()
        producer = KafkaProducer(bootstrap_servers=info.kafka_bootstrap, linger_ms=2, acks=1)
        wards = sorted(load_pack("halong").codes)
        topic = prefix + "ioc.payments.v1"
        sent_at: list[float] = []
        n_total = int(rate * seconds)
        t0 = time.monotonic()
        tick = 0.01
        for i in range(n_total):
            due = t0 + i / rate
            now = time.monotonic()
            if due > now + tick:
                producer.flush()
                time.sleep(due - now)
            ward = wards[i % len(wards)]
            ev = PaymentEvent(
                event_id=f"lat-{i}", event_time=datetime.now(UTC), payment_id=f"L{i}",
                merchant_id=f"BENCH-{ward}-{i % 50}", ward_code=ward, merchant_type="shop",
                channel="vietqr", amount_vnd=10_000, status="succeeded",
            )  # fmt: skip
            producer.send(topic, key=ev.merchant_id.encode(), value=encode_event(ev))
            sent_at.append(time.monotonic())
        producer.flush()
        produced_s = time.monotonic() - t0
        end = time.monotonic() + 30
        while (not poller.samples or poller.samples[-1][1] < n_total) and time.monotonic() < end:
            time.sleep(0.05)
        poller.stop.set()
        thread.join(timeout=10)
        producer.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    delays: list[float] = []
    j = 0
    samples = poller.samples
    for k, t_sent in enumerate(sent_at, start=1):
        while j < len(samples) and samples[j][1] < k:
            j += 1
        if j == len(samples):
            break
        delays.append(max(0.0, samples[j][0] - t_sent))
    if len(delays) < n_total:
        raise SystemExit(f"bench.ingest: only {len(delays)} of {n_total} events became visible")
    delays.sort()
    poll_gaps = [b[0] - a[0] for a, b in itertools.pairwise(samples)]
    return {
        "events": n_total,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(n_total / produced_s),
        "p50_s": round(delays[len(delays) // 2], 3),
        "p99_s": round(delays[int(len(delays) * 0.99) - 1], 3),
        "max_s": round(delays[-1], 3),
        "kpi_query_interval_s": round(sum(poll_gaps) / max(1, len(poll_gaps)), 3),
    }


def _schema(admin_url: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(admin_url, schema=name)
    return name


def _drop(admin_url: str, schema: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _delete_topics(bootstrap: str, prefix: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-ingest")
    try:
        admin.delete_topics([prefix + f.topic for f in FEEDS])
    except Exception as exc:  # leftover topics are harmless: say so and go on
        log(f"could not delete topics {prefix}*: {exc}")
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--latency-rate", type=int, default=2_000)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--profile", action="store_true", help="run (b) under pyinstrument")
    parser.add_argument(
        "--py-spy", type=Path, metavar="FILE", help="sample (b) with py-spy, all threads, into FILE"
    )
    parser.add_argument("--max-batch", type=int, default=10_000, help="records per transaction")
    parser.add_argument(
        "--members",
        type=int,
        default=2,
        help="`ioc ingest` processes in the consumer group for (b); with more than one, a "
        "one-member run is measured too",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=6,
        help="partitions of each pre-produced feed topic; a multiple of --members splits the "
        "payments topic (94%% of events) evenly",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--bare", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.members < 1 or args.partitions < 1:
        parser.error("--members and --partitions must be at least 1")
    if args.bare:
        bootstrap, n, *topics = args.bare
        _bare_child(bootstrap, int(n), topics)
        return 0
    info = read_connection_info(REPO / ".ioc")
    if not (info.admin_url and info.writer_url and info.reader_url and info.kafka_bootstrap):
        raise SystemExit("bench.ingest: start the services first: ioc services up")
    bootstrap = info.kafka_bootstrap
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    topics = [prefix + f.topic for f in FEEDS]
    schema = _schema(info.admin_url)
    one_schema = _schema(info.admin_url)
    lat_prefix = f"benchlat{uuid.uuid4().hex[:8]}."
    lat_schema = _schema(info.admin_url)
    profile = args.output.with_name("ingest_profile.txt") if args.profile else None
    try:
        log(f"producing {args.events:,} simulated events to {prefix}*")
        produced = produce(bootstrap, prefix, args.events, args.partitions)
        log(f"produced: {produced}")
        before, t0 = cpu.snapshot(), time.monotonic()
        bare = bare_consume(bootstrap, topics, produced["events"])
        bare_cpu = cpu_per_event(bare, cpu.used(before, cpu.snapshot()), time.monotonic() - t0)
        log(f"bare consume: {bare}, cpu us/event {bare_cpu}")
        before, t0 = cpu.snapshot(), time.monotonic()
        full = full_ingest(info, schema, prefix, profile, args.max_batch, args.py_spy, args.members)
        full_cpu = cpu_per_event(full, cpu.used(before, cpu.snapshot()), time.monotonic() - t0)
        log(f"full ingest ({args.members} members): {full}, cpu us/event {full_cpu}")
        # The bare rate of the same topics moved between 103k and 168k events/s from one run to
        # the next on this shared machine while the full rate stayed within 10 %; reading it
        # again after (b) shows how far it moved within this run.
        bare_after = bare_consume(bootstrap, topics, produced["events"])
        log(f"bare consume again: {bare_after}")
        one: dict[str, Any] | None = None
        one_cpu: dict[str, Any] | None = None
        if args.members > 1:
            before, t0 = cpu.snapshot(), time.monotonic()
            one = full_ingest(info, one_schema, prefix, None, args.max_batch)
            one_cpu = cpu_per_event(one, cpu.used(before, cpu.snapshot()), time.monotonic() - t0)
            log(f"full ingest (1 member): {one}, cpu us/event {one_cpu}")
        lat = latency(info, lat_schema, lat_prefix, args.latency_rate, args.latency_seconds)
        log(f"latency: {lat}")
    finally:
        _drop(info.admin_url, schema)
        _drop(info.admin_url, one_schema)
        _drop(info.admin_url, lat_schema)
        _delete_topics(bootstrap, prefix)
        _delete_topics(bootstrap, lat_prefix)
    ratio = full["events_per_s"] / bare["events_per_s"]
    bare_rates = (bare["events_per_s"], bare_after["events_per_s"])
    n = max(1, int(full["records"]))
    breakdown = {
        key: round(1e6 * float(full[src]) / n, 1)
        for key, src in (
            ("busy_total", "busy_s"),
            ("decode", "decode_s"),
            ("store_wall", "store_s"),
            ("store_python_cpu", "store_cpu_s"),
            ("offset_commit", "offset_commit_s"),
        )
    }
    breakdown["store_waiting_on_postgres"] = round(
        breakdown["store_wall"] - breakdown["store_python_cpu"], 1
    )
    result = {
        "benchmark": "ingest",
        "machine": describe(),
        "targets": TARGETS,
        "produce": produced,
        "bare_consume": bare,
        "full_ingest": full,
        "bare_consume_after": bare_after,
        "ratio_full_to_bare": round(ratio, 3),
        "ratio_full_to_bare_range": [
            round(full["events_per_s"] / max(bare_rates), 3),
            round(full["events_per_s"] / min(bare_rates), 3),
        ],
        # Microseconds per event. The store runs on a worker thread, overlapped with polling
        # and decoding the next batch, so the parts add up to more than busy_total.
        "full_ingest_us_per_event": breakdown,
        # CPU per event of each process over the whole phase (start-up and idle exit included),
        # from wait4 for the consumer and /proc for the server processes; cores_busy near the
        # machine's core count means the machine, not one component, sets the rate.
        "cpu_us_per_event": {
            "bare_consume": bare_cpu,
            "full_ingest": full_cpu,
            "full_ingest_one_member": one_cpu,
        },
        "members": args.members,
        "partitions_per_topic": args.partitions,
        # The same ingest as a single `ioc ingest` process, in the same run, for comparison.
        "full_ingest_one_member": one,
        "ratio_one_member_to_bare": None
        if one is None
        else round(one["events_per_s"] / bare["events_per_s"], 3),
        "latency": lat,
        "notes": [
            "events_per_s: records / time from the first record polled to the last offset "
            "commit; both consumers read the same pre-produced topics (4 feeds x partitions).",
            "ratio_full_to_bare uses the bare read before (b), as the target is stated; "
            "ratio_full_to_bare_range also divides by the bare read repeated after (b).",
            "latency: payments stamped at send time; the k-th sent counts as visible when the "
            "payments KPI query (ioc.core.queries.payments, city transactions) reaches k.",
            "members: (b) runs that many `ioc ingest` processes in one consumer group, as the "
            "README describes for scaling; its rate is events stored over the span from the "
            "first record any member polled to the last offset commit of any.",
            "max_rss_mb: peak resident memory of the largest `ioc ingest` process (wait4); "
            "max_rss_mb_all_members adds up every member's peak.",
        ],
        "profiled": profile is not None,
        "max_batch": args.max_batch,
        "met": {
            "ingest_events_per_s": full["events_per_s"] >= TARGETS["ingest_events_per_s"],
            "ratio_to_bare": ratio >= TARGETS["ratio_to_bare"],
            "max_rss_mb": full["max_rss_mb"] < TARGETS["max_rss_mb"],
            "p99_s": lat["p99_s"] < TARGETS["p99_s"],
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"results in {args.output}")
    print(json.dumps(result["met"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
