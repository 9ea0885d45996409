"""Entry point of the simulator step: `ioc simulate` writes the four feeds to Kafka or files."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TextIO

from ioc.app.cli import CommandError
from ioc.app.commands.streaming import StatusLine, add_patience_option, patience_seconds
from ioc.app.connect import kafka_bootstrap
from ioc.app.settings import Settings
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import FEEDS, parse_feeds
from ioc.core.pacing import PacingClock, parse_speed
from ioc.core.sinks import Sink, SinkError
from simulators.engine import SimConfig, SimProgress, Summary, describe_time, generate, run
from simulators.params import SimParams
from simulators.scenarios import SCENARIOS, ScenarioError, parse_scenario
from simulators.timebase import parse_duration
from streams.transport.patience import Patience
from streams.transport.sinks import FileSink, KafkaSink, NullSink


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ioc simulate`."""
    scenario_help = "; ".join(f"{name}: {s.help}" for name, s in SCENARIOS.items())
    p = sub.add_parser(
        "simulate",
        help="generate the four live feeds (deterministic for a given seed and start)",
        description=(
            "Generate dossiers, payments, feedback and air-quality events for the city pack. "
            "The same --seed, --start and options give byte-identical output."
        ),
    )
    p.add_argument("--feeds", default="all", help="all, or a comma list of feed names")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--start",
        help="simulated start, ISO 8601 (offset optional, +07:00 assumed); default: now, "
        "or now minus --duration when backfilling with a speed other than 1",
    )
    p.add_argument("--duration", help="how much simulated time, e.g. 7d, 12h, 1d12h")
    p.add_argument(
        "--speed", default="1", help="1 = real time, N = N times faster, max = as fast as possible"
    )
    p.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME[:k=v,...]",
        help=f"scenarios to apply, composable ({scenario_help})",
    )
    p.add_argument(
        "--to",
        default="kafka",
        help="kafka (IOC_KAFKA_BOOTSTRAP or the local broker), file:PATH (NDJSON; .gz "
        "compresses; a PATH ending in / gets one file per topic) or null",
    )
    p.add_argument(
        "--compression",
        choices=("none", "gzip", "snappy", "lz4", "zstd"),
        default="none",
        help="Kafka compression codec (default none; codecs other than gzip need their library)",
    )
    p.add_argument(
        "--volume-scale",
        type=float,
        default=1.0,
        help="multiply all arrival rates (default 1 = plausible for the city)",
    )
    add_patience_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Run the simulation described by the arguments."""
    config, speed = build_config(args, datetime.now(VN_TZ))
    patience_s = patience_seconds(args, settings)
    from ioc.core.citypack import load_pack

    pack = load_pack(settings.city_pack)
    _warn_if_ahead(config, speed, datetime.now(VN_TZ))
    compression = None if args.compression == "none" else args.compression
    line = StatusLine(sys.stderr, args.quiet)
    patience = Patience(seconds=patience_s, say=line.note)
    sink = open_sink(args.to, settings, compression=compression, patience=patience)
    try:
        summary = run(
            generate(config, pack),
            sink,
            PacingClock(config.start_s, speed),
            progress=None if args.quiet else _progress(line),
        )
    except SinkError as exc:
        raise CommandError(str(exc)) from None
    finally:
        line.done()
        try:
            sink.close()
        except SinkError as exc:
            raise CommandError(str(exc)) from None
    print_summary(summary, pack_titles={w.code: w.name for w in pack.wards}, out=sys.stdout)
    skipped = getattr(sink, "skipped", 0)
    if skipped:
        print(f"{skipped} message(s) held a newline byte and were not written to the NDJSON file")
    return 0


def build_config(args: argparse.Namespace, now: datetime) -> tuple[SimConfig, float | None]:
    """SimConfig and speed from parsed arguments; CommandError with one line if they are bad."""
    try:
        feeds = tuple(f.name for f in parse_feeds(args.feeds))
        speed = parse_speed(args.speed)
        duration = None if args.duration is None else parse_duration(args.duration)
        scenarios = tuple(parse_scenario(s) for s in args.scenario)
    except (ValueError, ScenarioError) as exc:
        raise CommandError(str(exc), status=2) from None
    if duration is not None and duration.total_seconds() <= 0:
        raise CommandError("--duration must be positive", status=2)
    if speed is None and duration is None:
        raise CommandError("--speed max needs --duration (e.g. --duration 30d)", status=2)
    if not args.volume_scale > 0:
        raise CommandError("--volume-scale must be positive", status=2)
    start = _start(args.start, now, speed, duration)
    params = SimParams()
    if args.volume_scale != 1.0:
        params = replace(params, volume_scale=args.volume_scale)
    config = SimConfig(
        start=start,
        duration=duration,
        seed=args.seed,
        feeds=feeds,
        scenarios=scenarios,
        params=params,
    )
    return config, speed


def _start(
    raw: str | None, now: datetime, speed: float | None, duration: timedelta | None
) -> datetime:
    if raw is None:
        base = now.replace(microsecond=0)
        # Faster than real time with a duration: backfill the history that ends now.
        if speed != 1.0 and duration is not None:
            return base - duration
        return base
    try:
        start = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"--start {raw!r} is not an ISO 8601 date-time (e.g. 2025-03-03T07:00+07:00)", status=2
        ) from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=VN_TZ)
    return start.replace(microsecond=0)


def _warn_if_ahead(config: SimConfig, speed: float | None, now: datetime) -> None:
    """Consumers reject events more than 5 minutes ahead of their clock (future_time)."""
    end = config.end_s
    wall = now.timestamp()
    ahead = (end is not None and end > wall + 300 and speed != 1.0) or (
        end is None and speed is not None and speed > 1.0
    )
    if ahead or config.start_s > wall + 300:
        print(
            "ioc simulate: note: simulated time will run ahead of the wall clock; consumers "
            "reject events more than 5 minutes in their future (future_time)",
            file=sys.stderr,
        )


def open_sink(
    spec: str,
    settings: Settings,
    *,
    compression: str | None = None,
    patience: Patience | None = None,
) -> Sink:
    """kafka | file:PATH | null. Kafka waits out outages with `patience` (default: the
    settings' kafka_patience, lines on stderr)."""
    try:
        if spec == "null":
            return NullSink()
        if spec.startswith("file:"):
            path = spec.removeprefix("file:")
            if not path:
                raise CommandError("--to file:PATH needs a path", status=2)
            return FileSink(path, topic_name=settings.topic)
        if spec == "kafka":
            sink = KafkaSink(
                kafka_bootstrap(settings),
                topic_name=settings.topic,
                compression=compression,
                patience=patience or Patience(seconds=settings.kafka_patience),
            )
            sink.ensure_topics(f.topic for f in FEEDS)
            return sink
    except SinkError as exc:
        raise CommandError(str(exc)) from None
    raise CommandError(f"--to {spec!r}: use kafka, file:PATH or null", status=2)


def _progress(line: StatusLine) -> SimProgress:
    """The run's progress callback: simulated time reached, events so far and their rate."""

    def progress(events: int, sim_now: float, wall: float) -> None:
        rate = events / wall if wall > 0 else 0.0
        line.show(f"simulated {describe_time(sim_now)} | {events:,} events | {rate:,.0f} events/s")

    return progress


def print_summary(summary: Summary, *, pack_titles: dict[str, str], out: TextIO) -> None:
    """Events per feed and per ward, plus the simulated span and the rate."""
    span = ""
    if summary.first is not None and summary.last is not None:
        span = f" from {describe_time(summary.first)} to {describe_time(summary.last)}"
    state = " (stopped early)" if summary.stopped else ""
    out.write(
        f"{summary.total:,} events{span} in {summary.wall_seconds:.1f} s "
        f"({summary.rate():,.0f} events/s){state}\n"
    )
    out.write("per feed:\n")
    for feed, count in summary.by_feed.items():
        out.write(f"  {feed:<12} {count:>12,}\n")
    out.write("per ward:\n")
    for code, count in summary.by_ward.items():
        out.write(f"  {code} {pack_titles.get(code, ''):<28} {count:>12,}\n")
