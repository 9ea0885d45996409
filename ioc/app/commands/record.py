"""Entry points of recording: `ioc record` (topics or a simulator run) and `ioc recordings`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ioc.app.cli import CommandError
from ioc.app.commands.streaming import StatusLine, feed_names, parse_time
from ioc.app.connect import kafka_bootstrap
from ioc.app.settings import Settings

if TYPE_CHECKING:
    from ioc.core.citypack import CityPack
    from ioc.core.sinks import Sink
    from simulators.engine import SimConfig


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `record` and `recordings`."""
    r = sub.add_parser(
        "record",
        help="capture feed topics (or a simulator run) into a recording (gzip NDJSON)",
        description="Capture the feeds' Kafka topics, or a seeded simulator run, into a "
        "recording that keeps each record's topic, key, partition, offset and timestamp.",
    )
    r.add_argument("file", type=Path, metavar="FILE", help="the recording to write (.ndjson.gz)")
    r.add_argument("--feeds", default="all", help="all, or a comma list of feed names")
    r.add_argument("--from", dest="start", metavar="TIME", help="ISO time, or -DURATION (ago)")
    r.add_argument("--to", dest="end", metavar="TIME", help="ISO time, or -DURATION (ago)")
    r.add_argument(
        "--source",
        choices=("kafka", "simulator"),
        default="kafka",
        help="kafka (the topics, default) or simulator (a seeded run over --from..--to)",
    )
    r.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    r.add_argument("--scenario", action="extend", nargs="+", default=[], metavar="SPEC")
    r.add_argument("--volume-scale", type=float, default=1.0, help="simulator volume factor")
    r.add_argument("--quiet", action="store_true", help="no progress line")
    r.set_defaults(func=record_command)

    lib = sub.add_parser("recordings", help="the library of recorded scenarios")
    libsub = lib.add_subparsers(dest="recordings_command", required=True)
    ls = libsub.add_parser("list", help="the library's recordings and what they show")
    ls.set_defaults(func=recordings_list)
    bd = libsub.add_parser("build", help="regenerate library recordings from the simulator")
    bd.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    bd.add_argument("--dir", type=Path, default=None, help="write here instead of the package")
    bd.set_defaults(func=recordings_build)


@dataclass(frozen=True)
class _Asked:
    """The feeds and the time range --feeds, --from and --to asked for."""

    feeds: tuple[str, ...]
    start: datetime | None
    end: datetime | None


def record_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write a recording of the topics or of a simulator run."""
    now = datetime.now(UTC)
    feeds = feed_names(args.feeds)
    start = None if args.start is None else parse_time(args.start, now, "--from")
    end = None if args.end is None else parse_time(args.end, now, "--to")
    asked = _Asked(feeds, start, end)
    if start is not None and end is not None and end <= start:
        raise CommandError("--to must be after --from", status=2)
    if args.source == "simulator":
        return _record_simulation(args, settings, asked)
    if args.scenario:
        raise CommandError("--scenario applies to --source simulator only", status=2)
    return _record_kafka(args, settings, asked)


def _record_kafka(args: argparse.Namespace, settings: Settings, asked: _Asked) -> int:
    from ioc.core.feeds import BY_NAME
    from streams.replay.capture import CaptureError, CaptureRange, capture_kafka, merge_partitions
    from streams.replay.recording import Header, RecordingError, RecordingWriter

    line = StatusLine(sys.stderr, args.quiet)

    def progress(kept: int, read: int, wall: float) -> None:
        line.show(f"read {read:,} records, kept {kept:,} | {read / max(wall, 1e-9):,.0f} rec/s")

    try:
        parts = capture_kafka(
            kafka_bootstrap(settings),
            [BY_NAME[f].topic for f in asked.feeds],
            CaptureRange.of(asked.start, asked.end),
            topic_name=settings.topic,
            progress=progress,
        )
    except CaptureError as exc:
        raise CommandError(str(exc)) from None
    finally:
        line.done()
    header = Header(
        source="kafka",
        feeds=list(asked.feeds),
        start=asked.start,
        end=asked.end,
        topic_prefix=settings.topic_prefix,
    )
    try:
        writer = RecordingWriter(args.file, header)
        for rec in merge_partitions(parts):
            writer.write(rec)
        writer.close()
    except RecordingError as exc:
        raise CommandError(str(exc)) from None
    print(f"recorded {writer.digest.records:,} records to {args.file} (digest "
          f"{writer.digest.hexdigest()[:16]})")  # fmt: skip
    return 0


def _record_simulation(args: argparse.Namespace, settings: Settings, asked: _Asked) -> int:
    from dataclasses import replace

    from ioc.core.citypack import load_pack
    from simulators.engine import SimConfig
    from simulators.params import SimParams
    from simulators.recordings import record_simulation
    from simulators.scenarios import ScenarioError, parse_scenario
    from streams.replay.recording import RecordingError

    start, end = asked.start, asked.end
    if start is None or end is None:
        raise CommandError("--source simulator needs --from and --to", status=2)
    if not args.volume_scale > 0:
        raise CommandError("--volume-scale must be positive", status=2)
    try:
        scenarios = tuple(parse_scenario(s) for s in args.scenario)
    except ScenarioError as exc:
        raise CommandError(str(exc), status=2) from None
    config = SimConfig(
        start=start.replace(microsecond=0),
        duration=end.replace(microsecond=0) - start.replace(microsecond=0),
        seed=args.seed,
        feeds=asked.feeds,
        scenarios=scenarios,
        params=replace(SimParams(), volume_scale=args.volume_scale),
    )
    pack = load_pack(settings.city_pack)
    try:
        sink = simulation_recording(args.file, config, pack)
        try:
            n = record_simulation(config, pack, sink)
        finally:
            sink.close()
    except RecordingError as exc:
        raise CommandError(str(exc)) from None
    print(f"recorded {n:,} simulated records to {args.file}")
    return 0


def simulation_recording(
    path: Path, config: SimConfig, pack: CityPack, description: str = ""
) -> Sink:
    """The sink a simulator run is recorded into: a recording file whose header describes it."""
    from simulators.recordings import describe_run
    from streams.replay.capture import RecordingSink
    from streams.replay.recording import Header, RecordingWriter

    end = None if config.duration is None else config.start + config.duration
    header = Header(
        source="simulator",
        feeds=list(config.feeds),
        start=config.start,
        end=end,
        description=description,
        simulator=describe_run(config, pack),
    )
    return RecordingSink(RecordingWriter(path, header))


def build_library(names: list[str], directory: Path | None = None) -> dict[str, int]:
    """Regenerate library recordings by name (deterministic); records written per name."""
    from simulators.recordings import build

    return build(names, simulation_recording, directory)


def recordings_list(args: argparse.Namespace, settings: Settings) -> int:
    """Name, size and description of each library recording."""
    from simulators.recordings import LIBRARY, path_of

    for name, entry in LIBRARY.items():
        path = path_of(name)
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path.exists() else "not built"
        print(f"scenario:{name:<20} {size:>10}  {entry.description}")
    return 0


def recordings_build(args: argparse.Namespace, settings: Settings) -> int:
    """Regenerate library recordings from the simulator (deterministic)."""
    from simulators.recordings import LIBRARY

    names = args.names or list(LIBRARY)
    unknown = [n for n in names if n not in LIBRARY]
    if unknown:
        raise CommandError(
            f"unknown recording {', '.join(unknown)}; choose from {', '.join(LIBRARY)}", status=2
        )
    for name, n in build_library(names, args.dir).items():
        print(f"scenario:{name}: {n:,} records")
    return 0
