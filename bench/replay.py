"""Benchmark of replay (recording -> topic): records/s at --speed max into Kafka and the bus.

Run: python -m bench.replay [--skip-kafka] [--recording scenario:NAME|FILE]
(writes bench/results/replay.json). The recording is read from disk in every run (gzip + line
decoding included). Kafka runs produce into fresh topics with acks=all and count until the last
record is acknowledged; a bare kafka-python producer sending the same records from memory with
the same settings gives the ratio. Bus runs count until the last record is in the bus.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import resource
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.machine import describe
from ioc.app.commands.replay import resolve_recording
from ioc.app.settings import Settings
from ioc.core.feeds import FEEDS
from ioc.core.sinks import Sink
from streams.replay.player import replay
from streams.replay.recording import open_recording
from streams.replay.retime import Retimer, shift_to
from streams.transport.bus import Bus
from streams.transport.sinks import BusSink, KafkaSink, NullSink

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"
TOPICS = [f.topic for f in FEEDS]


def timed(path: Path, make: Callable[[], Sink], retime: bool = False) -> dict[str, Any]:
    """One replay at max speed: records/s from opening the file to the last record delivered."""
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    recording = open_recording(path)
    records = recording.records()
    first = next(records)
    retimer = Retimer(shift_to(first.time_ms, datetime.now(UTC))) if retime else None
    target = make()
    summary = replay(itertools.chain([first], records), target, speed=None, transform=retimer)
    target.close()
    seconds = time.perf_counter() - t0
    return {
        "records": summary.records,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu0, 3),
        "records_per_s": round(summary.records / seconds),
    }


def bare_producer(bootstrap: str, path: Path, topic_prefix: str) -> dict[str, Any]:
    """The same records sent by a plain kafka-python producer from memory (no file, no replay)."""
    from kafka import KafkaProducer

    records = list(open_recording(path).records())
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=512 * 1024,
        max_in_flight_requests_per_connection=5,
    )
    for r in records[:100]:  # metadata for every topic before the clock starts
        producer.send(topic_prefix + r.topic, value=r.value, key=r.key, partition=r.partition)
    producer.flush()
    t0 = time.perf_counter()
    for r in records:
        producer.send(topic_prefix + r.topic, value=r.value, key=r.key, partition=r.partition)
    producer.flush()
    seconds = time.perf_counter() - t0
    producer.close()
    return {
        "records": len(records),
        "seconds": round(seconds, 3),
        "records_per_s": round(len(records) / seconds),
    }


def kafka_target(bootstrap: str, prefix: str) -> Sink:
    """A Kafka sink onto fresh prefixed topics, created before it is returned."""
    target = KafkaSink(
        bootstrap, topic_name=lambda base: prefix + base, client_id="ioc-replay", noun="record"
    )
    target.ensure_topics(TOPICS)
    return target


def topic_total(bootstrap: str, names: list[str]) -> int:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), group_id=None)
    tps = [
        TopicPartition(n, p) for n in names for p in sorted(consumer.partitions_for_topic(n) or [])
    ]
    total = sum(consumer.end_offsets(tps).values())
    consumer.close()
    return int(total)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recording", default="scenario:holiday_rush")
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    path = resolve_recording(args.recording)
    n = sum(1 for _ in open_recording(path).records())
    results: dict[str, Any] = {
        "benchmark": "replay",
        "recording": args.recording,
        "recording_bytes": path.stat().st_size,
        "records": n,
        "machine": describe(),
        "kafka_python": version("kafka-python"),
    }
    runs: dict[str, Any] = {}
    runs["null"] = timed(path, NullSink)
    runs["bus"] = timed(path, lambda: BusSink(Bus(), topic_name=str))
    runs["bus_retimed"] = timed(path, lambda: BusSink(Bus(), topic_name=str), retime=True)
    print(f"null {runs['null']['records_per_s']:,}/s, bus {runs['bus']['records_per_s']:,}/s, "
          f"bus retimed {runs['bus_retimed']['records_per_s']:,}/s", file=sys.stderr)  # fmt: skip
    if not args.skip_kafka:
        settings = Settings.from_env()
        from ioc.app.connect import kafka_bootstrap

        bootstrap = kafka_bootstrap(settings)
        created: list[str] = []
        try:
            for name in ("kafka", "kafka_retimed"):
                prefix = f"bench{uuid.uuid4().hex[:8]}."

                runs[name] = timed(
                    path, lambda p=prefix: kafka_target(bootstrap, p), retime=name.endswith("ed")
                )
                names = [prefix + t for t in TOPICS]
                created.extend(names)
                runs[name]["records_in_topics"] = topic_total(bootstrap, names)
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            kafka_target(bootstrap, prefix).close()  # topics created outside the timed part
            created.extend(prefix + t for t in TOPICS)
            runs["kafka_bare_producer"] = bare_producer(bootstrap, path, prefix)
            runs["kafka"]["ratio_to_bare_producer"] = round(
                runs["kafka"]["records_per_s"] / runs["kafka_bare_producer"]["records_per_s"], 3
            )
        finally:
            with contextlib.suppress(Exception):
                from kafka.admin import KafkaAdminClient

                admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
                admin.delete_topics(created)
                admin.close()
        print(f"kafka {runs['kafka']['records_per_s']:,}/s (bare producer "
              f"{runs['kafka_bare_producer']['records_per_s']:,}/s)", file=sys.stderr)  # fmt: skip
    results["runs"] = runs
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
