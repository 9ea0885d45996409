"""Entry points of replay and time travel: `ioc record`, `ioc replay`, `ioc rebuild` and
`ioc recordings` (the library of recorded scenarios)."""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from ioc.app.cli import CommandError
from ioc.app.connect import kafka_bootstrap
from ioc.app.settings import Settings
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import parse_feeds

if TYPE_CHECKING:
    from streams.replay.run import ReplayResult

log = logging.getLogger("ioc.app.commands.replay")
SCENARIO_PREFIX = "scenario:"
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `record`, `replay`, `rebuild` and `recordings`."""
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
    _register_replay(sub)

    b = sub.add_parser(
        "rebuild",
        help="rebuild the tables from Kafka into a fresh schema, from a point in time",
        description="Reset a consumer group to the offsets at --from (Kafka record time) and "
        "ingest the topics up to their current end into a fresh, migrated schema.",
    )
    b.add_argument("--from", dest="start", metavar="TIME", help="ISO time or -DURATION; "
                   "default: the earliest retained records")  # fmt: skip
    b.add_argument("--schema", help="the fresh schema to build (default rebuild_<time>)")
    b.add_argument("--group", help="consumer group (default <IOC_CONSUMER_GROUP>-rebuild-<schema>)")
    b.add_argument("--feeds", default="all", help="all, or a comma list of feed names")
    b.set_defaults(func=rebuild_command)

    lib = sub.add_parser("recordings", help="the library of recorded scenarios")
    libsub = lib.add_subparsers(dest="recordings_command", required=True)
    ls = libsub.add_parser("list", help="the library's recordings and what they show")
    ls.set_defaults(func=recordings_list)
    bd = libsub.add_parser("build", help="regenerate library recordings from the simulator")
    bd.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    bd.add_argument("--dir", type=Path, default=None, help="write here instead of the package")
    bd.set_defaults(func=recordings_build)


def _register_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ioc.app.commands.simulate import add_patience_option

    p = sub.add_parser(
        "replay",
        help="replay a recording onto Kafka or the in-process bus, paced by its timing",
        description="Replay a recording (a file, or scenario:NAME from the library) with its "
        "recorded timing scaled by --speed. --to bus replays into an in-process bus and ingests "
        "it into the database (no Kafka needed).",
    )
    p.add_argument("recording", metavar="FILE|scenario:NAME")
    p.add_argument("--speed", default="max", help="1 = recorded pace, N = N times faster, max")
    p.add_argument("--to", dest="target", choices=("kafka", "bus", "null"), default="kafka")
    p.add_argument(
        "--retime",
        metavar="now|TIME",
        help="shift every timestamp in the events so that the first record is at this time",
    )
    p.add_argument("--feeds", default="all", help="replay only these feeds (default all)")
    add_patience_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=replay_command)


# -- shared helpers ---------------------------------------------------------------------------


def parse_time(text: str, now: datetime, option: str) -> datetime:
    """ISO 8601 (offset optional, +07:00 assumed), 'now', or -DURATION meaning that long ago."""
    from simulators.timebase import parse_duration

    raw = text.strip()
    if raw == "now":
        return now
    if raw.startswith("-"):
        try:
            return now - parse_duration(raw[1:])
        except ValueError as exc:
            raise CommandError(f"{option} {text!r}: {exc}", status=2) from None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"{option} {text!r} is not an ISO time (e.g. 2025-12-10T06:00+07:00), now or -2h",
            status=2,
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=VN_TZ)


def _feeds(spec: str) -> tuple[str, ...]:
    try:
        return tuple(f.name for f in parse_feeds(spec))
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None


class _Line:
    """One progress line on stderr, rewritten in place on a terminal, every 10 s in a log."""

    def __init__(self, out: TextIO, quiet: bool) -> None:
        self._out = out
        self._tty = out.isatty()
        self._quiet = quiet
        self._last = 0.0
        self._shown = False

    def show(self, text: str, final: bool = False) -> None:
        if self._quiet:
            return
        now = time.monotonic()
        if not self._tty and not final and self._shown and now - self._last < 10.0:
            return
        self._last = now
        self._out.write(("\r" + text.ljust(78)) if self._tty else text + "\n")
        self._out.flush()
        self._shown = True

    def note(self, text: str) -> None:
        """A line of its own (e.g. waiting for Kafka), shown even when quiet."""
        if self._shown and self._tty and not self._quiet:
            self._out.write("\n")
            self._shown = False
        self._out.write(text + "\n")
        self._out.flush()

    def done(self) -> None:
        if self._shown and self._tty and not self._quiet:
            self._out.write("\n")
            self._out.flush()
        self._shown = False


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, VN_TZ).strftime("%Y-%m-%d %H:%M")


# -- ioc record -------------------------------------------------------------------------------


def record_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write a recording of the topics or of a simulator run."""
    from ioc.core.feeds import BY_NAME
    from streams.replay.capture import CaptureError, Span, capture_kafka, merge_partitions
    from streams.replay.recording import Header, RecordingError, RecordingWriter

    now = datetime.now(UTC)
    feeds = _feeds(args.feeds)
    start = None if args.start is None else parse_time(args.start, now, "--from")
    end = None if args.end is None else parse_time(args.end, now, "--to")
    if start is not None and end is not None and end <= start:
        raise CommandError("--to must be after --from", status=2)
    if args.source == "simulator":
        return _record_simulation(args, settings, feeds, start, end)
    if args.scenario:
        raise CommandError("--scenario applies to --source simulator only", status=2)
    line = _Line(sys.stderr, args.quiet)
    bases = [BY_NAME[f].topic for f in feeds]

    def progress(kept: int, read: int, wall: float) -> None:
        line.show(f"read {read:,} records, kept {kept:,} | {read / max(wall, 1e-9):,.0f} rec/s")

    try:
        parts = capture_kafka(
            kafka_bootstrap(settings),
            bases,
            Span.of(start, end),
            topic_name=settings.topic,
            progress=progress,
        )
    except CaptureError as exc:
        raise CommandError(str(exc)) from None
    finally:
        line.done()
    header = Header(
        source="kafka",
        feeds=list(feeds),
        start=start,
        end=end,
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


def _record_simulation(
    args: argparse.Namespace,
    settings: Settings,
    feeds: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
) -> int:
    from dataclasses import replace

    from ioc.core.citypack import load_pack
    from simulators.engine import SimConfig
    from simulators.params import SimParams
    from simulators.recordings import record_simulation
    from simulators.scenarios import ScenarioError, parse_scenario
    from streams.replay.recording import RecordingError

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
        feeds=feeds,
        scenarios=scenarios,
        params=replace(SimParams(), volume_scale=args.volume_scale),
    )
    try:
        n = record_simulation(config, load_pack(settings.city_pack), args.file)
    except RecordingError as exc:
        raise CommandError(str(exc)) from None
    print(f"recorded {n:,} simulated records to {args.file}")
    return 0


# -- ioc replay -------------------------------------------------------------------------------


def resolve_recording(spec: str) -> Path:
    """A file path, or scenario:NAME from the library; CommandError if there is none."""
    if spec.startswith(SCENARIO_PREFIX):
        from simulators.recordings import LIBRARY, path_of

        name = spec.removeprefix(SCENARIO_PREFIX)
        if name not in LIBRARY:
            raise CommandError(
                f"no recorded scenario {name!r}; choose from {', '.join(LIBRARY)}", status=2
            )
        path = path_of(name)
        if not path.exists():
            raise CommandError(f"{path} is missing; run `ioc recordings build {name}`")
        return path
    path = Path(spec)
    if not path.is_file():
        raise CommandError(f"no recording at {spec} (a file, or scenario:NAME)", status=2)
    return path


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """Replay a recording, with a progress line, and print what was sent."""
    from ioc.app.commands.simulate import patience_seconds
    from simulators.clock import parse_speed
    from streams.replay.player import ReplayError
    from streams.replay.recording import RecordingError, open_recording
    from streams.replay.run import run_replay
    from streams.transport.patience import Patience

    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None
    feeds = _feeds(args.feeds)
    patience_s = patience_seconds(args, settings)
    path = resolve_recording(args.recording)
    now = datetime.now(UTC)
    retime = None if args.retime is None else parse_time(args.retime, now, "--retime")
    if retime is not None and speed != 1.0:
        print(
            "ioc replay: note: retimed events replayed faster than real time run ahead of the "
            "clock; consumers reject events more than 5 minutes in their future (future_time)",
            file=sys.stderr,
        )
    try:
        recording = open_recording(path)
    except RecordingError as exc:
        raise CommandError(str(exc)) from None
    line = _Line(sys.stderr, args.quiet)
    progress = _replay_progress(line, recording.header.start, recording.header.end)
    stop = _stop_on_signals()
    try:
        result = run_replay(
            recording,
            args.target,
            settings,
            speed=speed,
            retime=retime,
            feeds=feeds,
            stop=stop,
            progress=progress,
            bootstrap=kafka_bootstrap(settings) if args.target == "kafka" else None,
            patience=Patience(seconds=patience_s, say=line.note, stop=stop),
        )
    except (ReplayError, RecordingError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        line.done()
    if result.summary.records:
        s = result.summary
        progress(s.records, s.last_ms or 0, s.wall_s, final=True)
        line.done()
    _print_replayed(result, path.name, args.target, settings.db_schema)
    return 0


def _replay_progress(
    line: _Line, start: datetime | None, end: datetime | None
) -> Callable[..., None]:
    """The progress callback: records sent, recorded time reached and its share of the span."""
    span = None
    if start is not None and end is not None:
        span = (start.timestamp() * 1000, end.timestamp() * 1000)

    def progress(n: int, t_ms: int, wall: float, final: bool = False) -> None:
        share = ""
        if span is not None and span[1] > span[0]:
            share = f" | {min(1.0, max(0.0, (t_ms - span[0]) / (span[1] - span[0]))):.0%}"
        rate = n / max(wall, 1e-9)
        line.show(f"replayed {n:,} | recorded {_when(t_ms)}{share} | {rate:,.0f}/s", final)

    return progress


def _print_replayed(result: ReplayResult, name: str, target: str, schema: str) -> None:
    s = result.summary
    state = " (stopped early)" if s.stopped else ""
    print(f"replayed {s.records:,} records from {name} to {target} in {s.wall_s:.1f} s "
          f"({s.rate():,.0f} records/s){state}")  # fmt: skip
    for topic, count in sorted((s.by_topic or {}).items()):
        print(f"  {topic:<22} {count:>10,}")
    if result.shift is not None:
        print(f"retimed by {result.shift} ({result.retimed:,} events; {result.unchanged:,} "
              "undecodable records replayed as they were)")  # fmt: skip
    if result.ingested is not None:
        print(f"ingested {result.ingested:,} records into schema {schema} "
              f"({result.dead:,} dead letters)")  # fmt: skip


# -- ioc rebuild ------------------------------------------------------------------------------


def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild the tables from Kafka into a fresh schema."""
    from streams.replay.rebuild import RebuildError, rebuild

    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)
    now = datetime.now(UTC)
    start = None if args.start is None else parse_time(args.start, now, "--from")
    schema = args.schema or f"rebuild_{now:%Y%m%d%H%M%S}"
    if not _SCHEMA_RE.match(schema):
        raise CommandError(
            f"--schema {schema!r} must start with a letter and hold only letters, digits and '_'",
            status=2,
        )
    group = args.group or f"{settings.consumer_group}-rebuild-{schema}"
    try:
        result = rebuild(
            settings,
            schema=schema,
            group=group,
            start=start,
            feeds=_feeds(args.feeds),
            bootstrap=kafka_bootstrap(settings),
            stop=_stop_on_signals(),
        )
    except RebuildError as exc:
        raise CommandError(str(exc)) from None
    print(f"rebuilt schema {schema} from {result.records:,} records ({result.inserted:,} "
          f"inserted, {result.dead:,} dead letters) with group {group}; use it with "
          f"IOC_DB_SCHEMA={schema}")  # fmt: skip
    return 0


# -- ioc recordings ---------------------------------------------------------------------------


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
    from simulators.recordings import LIBRARY, build

    names = args.names or list(LIBRARY)
    unknown = [n for n in names if n not in LIBRARY]
    if unknown:
        raise CommandError(
            f"unknown recording {', '.join(unknown)}; choose from {', '.join(LIBRARY)}", status=2
        )
    for name, n in build(names, args.dir).items():
        print(f"scenario:{name}: {n:,} records")
    return 0
