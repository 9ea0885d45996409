"""Benchmark of the simulator step: events/s generated, to NDJSON and into Kafka, per feed.

Run: python -m bench.simulate [--skip-kafka] [--profile] (writes bench/results/simulate.json).
Kafka is the broker of IOC_KAFKA_BOOTSTRAP or of `ioc services up`; the benchmark produces into
fresh topics and deletes them afterwards. Times are wall-clock from the first generated event to
the sink's last flush (Kafka: every message acknowledged with acks=all), warm-up included.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

from bench.machine import describe
from ioc.app.settings import Settings
from ioc.core.citypack import CityPack, load_pack
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import BY_TOPIC, FEED_NAMES
from ioc.core.pacing import PacingClock
from ioc.core.sinks import Sink
from simulators.engine import SimConfig, generate, run
from streams.transport.sinks import FileSink, KafkaSink, NullSink

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"
START = datetime(2025, 3, 3, tzinfo=VN_TZ)
SEED = 2025
TARGETS = {"file": 50_000, "kafka": 15_000}
# Simulated span per run: long enough for tens of thousands of events of each feed.
SPAN_ALL = {"null": timedelta(days=7), "file": timedelta(days=7), "kafka": timedelta(days=2)}
SPAN_FEED = {
    "dossiers": timedelta(days=14),
    "payments": timedelta(days=1),
    "feedback": timedelta(days=60),
    "air_quality": timedelta(days=30),
}


@dataclass
class Measurement:
    events: int
    seconds: float
    cpu_seconds: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "events_per_s": round(self.events / self.seconds),
        }


def measure(config: SimConfig, pack: CityPack, sink: Sink) -> Measurement:
    """One run into `sink`, as fast as possible, timed to the sink's close."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = run(generate(config, pack), sink, PacingClock(config.start_s, None))
    sink.close()
    return Measurement(
        summary.total, time.perf_counter() - wall0, time.process_time() - cpu0
    )  # fmt: skip


def bench_sink(
    name: str, make_sink: Callable[[], Sink], pack: CityPack
) -> dict[str, object]:  # fmt: skip
    """All feeds together, then each feed alone."""
    result: dict[str, object] = {}
    span = SPAN_ALL[name]
    config = SimConfig(start=START, duration=span, seed=SEED)
    m = measure(config, pack, make_sink())
    result["all"] = {**m.as_dict(), "simulated_days": span.days}
    per_feed: dict[str, object] = {}
    for feed in FEED_NAMES:
        span = SPAN_FEED[feed]
        config = SimConfig(start=START, duration=span, seed=SEED, feeds=(feed,))
        m = measure(config, pack, make_sink())
        per_feed[feed] = {**m.as_dict(), "simulated_days": span.days}
    result["per_feed"] = per_feed
    print(f"{name:>5}: {result['all']}", file=sys.stderr)
    return result


def _bootstrap() -> str | None:
    settings = Settings.from_env()
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    from ioc.app.services.state import read_connection_info

    return read_connection_info(settings.data_dir).kafka_bootstrap


def bench_kafka(pack: CityPack, bootstrap: str) -> dict[str, object]:
    """Into fresh topics on the broker, deleted afterwards."""
    from kafka import KafkaAdminClient

    prefixes: list[str] = []

    def make() -> Sink:
        prefix = f"bench{uuid.uuid4().hex[:8]}."
        prefixes.append(prefix)
        sink = KafkaSink(bootstrap, topic_name=lambda t: prefix + t)
        # Topic creation is setup, not production: done before the clock starts.
        sink.ensure_topics(BY_TOPIC)
        return sink

    try:
        result = bench_sink("kafka", make, pack)
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ioc-bench")
        try:
            admin.delete_topics([p + t for p in prefixes for t in BY_TOPIC])
        except Exception as exc:
            print(f"could not delete benchmark topics: {exc}", file=sys.stderr)
        admin.close()
    result["producer"] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 20,
        "batch_size": 512 * 1024,
        "compression": None,
    }
    result["bootstrap"] = bootstrap
    return result


def profile_top(pack: CityPack, limit: int = 12) -> list[dict[str, object]]:
    """cProfile of one simulated day to NDJSON: the functions with the most own time."""
    config = SimConfig(start=START, duration=timedelta(days=1), seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        profiler = cProfile.Profile()
        profiler.enable()
        measure(config, pack, FileSink(Path(tmp) / "p.ndjson"))
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((own, cumulative, calls, f"{Path(filename).name}:{line}({func})"))
    rows.sort(reverse=True)
    return [
        {"function": f, "calls": c, "own_s": round(o, 3), "cumulative_s": round(cu, 3)}
        for o, cu, c, f in rows[:limit]
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__)
    parser.add_argument("--skip-kafka", action="store_true", help="files and generation only")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of one day")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    pack = load_pack("halong")
    results: dict[str, object] = {
        "benchmark": "simulate",
        "machine": {
            **describe(),
            "msgspec": version("msgspec"),
            "kafka_python": version("kafka-python"),
        },
        "config": {"start": START.isoformat(), "seed": SEED, "city_pack": "halong"},
        "targets_events_per_s": TARGETS,
    }
    results["null"] = bench_sink("null", NullSink, pack)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000_000))
        results["file"] = bench_sink(
            "file", lambda: FileSink(Path(tmp) / f"run{next(counter)}.ndjson"), pack
        )
    met: dict[str, bool] = {}
    met["file"] = _rate(results["file"]) >= TARGETS["file"]
    if not args.skip_kafka:
        bootstrap = _bootstrap()
        if bootstrap is None:
            print("no Kafka: set IOC_KAFKA_BOOTSTRAP or run `ioc services up`", file=sys.stderr)
            return 1
        results["kafka"] = bench_kafka(pack, bootstrap)
        met["kafka"] = _rate(results["kafka"]) >= TARGETS["kafka"]
    results["targets_met"] = met
    if args.profile:
        results["profile_top_own_time"] = profile_top(pack)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: targets met {met}", file=sys.stderr)
    return 0 if all(met.values()) else 1


def _rate(section: object) -> float:
    assert isinstance(section, dict)  # noqa: S101 - our own structure
    return float(section["all"]["events_per_s"])


if __name__ == "__main__":
    sys.exit(main())
