"""Entry point of the simulator step: `ioc simulate` writes the four feeds to Kafka or files."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TextIO

from ioc.app.cli import CommandError
from ioc.app.connect import kafka_bootstrap
from ioc.app.settings import Settings, SettingsError, parse_patience
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import parse_feeds
from simulators.clock import SimClock, parse_speed
from simulators.engine import SimConfig, Summary, describe_time, generate, run
from simulators.params import SimParams
from simulators.scenarios import SCENARIOS, ScenarioError, parse_scenario
from simulators.sinks import FileSink, KafkaSink, NullSink, Sink, SinkError, feed_topics
from simulators.timebase import parse_duration
from streams.transport.patience import Patience


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


def add_patience_option(p: argparse.ArgumentParser) -> None:
    """--kafka-patience, shared by `ioc simulate` and `ioc replay`."""
    p.add_argument(
        "--kafka-patience",
        metavar="DURATION",
        help="how long to wait, keeping our place, for a Kafka broker that went away before "
        "giving up: 300, 90s, 5m, 1h; 0 = not at all (default IOC_KAFKA_PATIENCE or 5m)",
    )


def patience_seconds(args: argparse.Namespace, settings: Settings) -> float:
    """--kafka-patience, else IOC_KAFKA_PATIENCE; CommandError with one line if it is bad."""
    raw = getattr(args, "kafka_patience", None)
    if raw is None:
        return settings.kafka_patience
    try:
        return parse_patience("--kafka-patience", raw)
    except SettingsError as exc:
        raise CommandError(str(exc), status=2) from None


def handle(args: argparse.Namespace, settings: Settings) -> int:
    """Run the simulation described by the arguments."""
    config, speed = build_config(args, datetime.now(VN_TZ))
    patience_s = patience_seconds(args, settings)
    from ioc.core.citypack import load_pack

    pack = load_pack(settings.city_pack)
    _warn_if_ahead(config, speed, datetime.now(VN_TZ))
    compression = None if args.compression == "none" else args.compression
    progress = None if args.quiet else _Progress(sys.stderr)
    say = progress.note if progress is not None else _say
    patience = Patience(seconds=patience_s, say=say)
    sink = open_sink(args.to, settings, compression=compression, patience=patience)
    try:
        summary = run(
            generate(config, pack),
            sink,
            SimClock(config.start_s, speed),
            progress=progress,
        )
    except SinkError as exc:
        raise CommandError(str(exc)) from None
    finally:
        if progress is not None:
            progress.done()
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


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


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
            sink.ensure_topics(feed_topics(settings.topic))
            return sink
    except SinkError as exc:
        raise CommandError(str(exc)) from None
    raise CommandError(f"--to {spec!r}: use kafka, file:PATH or null", status=2)


class _Progress:
    """One status line on stderr, at most once a second (rewritten in place on a terminal)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._last_line = 0.0
        self._shown = False

    def __call__(self, events: int, sim_now: float, wall: float) -> None:
        now = time.monotonic()
        # A log file gets a line every 10 s rather than every second.
        if not self._tty and now - self._last_line < 10.0 and self._shown:
            return
        self._last_line = now
        rate = events / wall if wall > 0 else 0.0
        line = f"simulated {describe_time(sim_now)} | {events:,} events | {rate:,.0f} events/s"
        if self._tty:
            self._out.write("\r" + line.ljust(70))
        else:
            self._out.write(line + "\n")
        self._out.flush()
        self._shown = True

    def note(self, line: str) -> None:
        """A line of its own (e.g. waiting for Kafka), not overwritten by the next status."""
        if self._shown and self._tty:
            self._out.write("\n")
            self._shown = False
        self._out.write(line + "\n")
        self._out.flush()

    def done(self) -> None:
        if self._shown and self._tty:
            self._out.write("\n")
            self._out.flush()


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
