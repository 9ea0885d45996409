"""Entry point of replay: `ioc replay` (and, registered with it, record, recordings and rebuild)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ioc.app.cli import CommandError
from ioc.app.commands.streaming import (
    StatusLine,
    add_patience_option,
    feed_names,
    parse_time,
    patience_seconds,
    stop_on_signals,
    when,
)
from ioc.app.connect import kafka_bootstrap
from ioc.app.settings import Settings

if TYPE_CHECKING:
    import threading

    from ioc.core.db.connection import Connect
    from ioc.core.sinks import Sink
    from streams.ingest.setup import IngestSetup
    from streams.replay.run import ReplayResult

SCENARIO_PREFIX = "scenario:"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ioc replay`."""
    p = sub.add_parser(
        "replay",
        help="replay a recording onto Kafka or the in-process bus, paced by its timing",
        description="Replay a recording (a file, or scenario:NAME from the library) with its "
        "recorded timing scaled by --speed. --to bus replays into an in-process bus and ingests "
        "it into the database (no Kafka needed).",
    )
    p.add_argument("recording", metavar="FILE|scenario:NAME")
    p.add_argument("--speed", default="max", help="1 = recorded pace, N = N times faster, max")
    p.add_argument("--to", dest="sink", choices=("kafka", "bus", "null"), default="kafka")
    p.add_argument(
        "--retime",
        metavar="now|TIME",
        help="shift every timestamp in the events so that the first record is at this time",
    )
    p.add_argument("--feeds", default="all", help="replay only these feeds (default all)")
    add_patience_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=replay_command)


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
    from ioc.core.pacing import parse_speed
    from ioc.core.sinks import SinkError
    from streams.replay.player import ReplayError
    from streams.replay.recording import RecordingError, open_recording
    from streams.replay.run import ReplayRequest, run_replay, run_replay_ingesting

    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None
    feeds = feed_names(args.feeds)
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
    line = StatusLine(sys.stderr, args.quiet)
    progress = _replay_progress(line, recording.header.start, recording.header.end)
    ask = ReplayRequest(feeds, speed, retime, stop_on_signals(), progress)
    try:
        if args.sink == "bus":
            result = run_replay_ingesting(recording, _bus_ingest(settings), ask)
        else:
            open_sink = _sink_opener(args.sink, settings, feeds, patience_s, line, ask.stop)
            result = run_replay(recording, open_sink, ask)
    except (ReplayError, RecordingError, SinkError) as exc:
        raise CommandError(str(exc)) from None
    finally:
        line.done()
    if result.summary.records:
        s = result.summary
        progress(s.records, s.last_ms or 0, s.wall_s, final=True)
        line.done()
    _print_replayed(result, path.name, args.sink, settings.db_schema)
    return 0


def _sink_opener(
    name: str,
    settings: Settings,
    feeds: tuple[str, ...],
    patience_s: float,
    line: StatusLine,
    stop: threading.Event,
) -> Callable[[], Sink]:
    """How to open the sink of --to kafka (waiting out a broker outage) or --to null."""
    if name == "null":
        from streams.transport.sinks import NullSink

        return NullSink
    bootstrap = kafka_bootstrap(settings)

    def open_kafka() -> Sink:
        from ioc.core.feeds import BY_NAME
        from streams.transport.patience import Patience
        from streams.transport.sinks import KafkaSink

        sink = KafkaSink(
            bootstrap,
            topic_name=settings.topic,
            client_id="ioc-replay",
            noun="record",
            patience=Patience(seconds=patience_s, say=line.note, stop=stop),
        )
        sink.ensure_topics(BY_NAME[f].topic for f in feeds)
        return sink

    return open_kafka


def _bus_ingest(settings: Settings) -> IngestSetup:
    """Where --to bus ingests: the settings' database (writer role), checked to be migrated."""
    from ioc.core.citypack import load_pack
    from streams.ingest.setup import IngestSetup

    return IngestSetup(
        connect=_writer_connect(settings),
        wards=load_pack(settings.city_pack),
        topic_name=settings.topic,
        earliest=settings.earliest_event_time,
    )


def _writer_connect(settings: Settings) -> Connect:
    """A connection factory for the writer role; CommandError if the schema is not migrated."""
    import psycopg

    from ioc.app.connect import connector, database_url
    from ioc.core.errors import NoDatabaseError

    try:
        url = database_url(settings, "writer")
    except NoDatabaseError as exc:
        raise CommandError(str(exc)) from None
    connect = connector(url, settings.db_schema, "ioc-replay")
    try:
        with connect() as conn:
            found = conn.execute("SELECT to_regclass('feed_health')").fetchone()
    except psycopg.OperationalError as exc:
        raise CommandError(f"database unreachable: {' '.join(str(exc).split())}") from None
    if found is None or found[0] is None:
        raise CommandError(
            f"schema {settings.db_schema!r} has no ingest tables; run `ioc db migrate` first"
        )
    return connect


def _replay_progress(
    line: StatusLine, start: datetime | None, end: datetime | None
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
        line.show(f"replayed {n:,} | recorded {when(t_ms)}{share} | {rate:,.0f}/s", final)

    return progress


def _print_replayed(result: ReplayResult, name: str, sink: str, schema: str) -> None:
    s = result.summary
    state = " (stopped early)" if s.stopped else ""
    print(f"replayed {s.records:,} records from {name} to {sink} in {s.wall_s:.1f} s "
          f"({s.rate():,.0f} records/s){state}")  # fmt: skip
    for topic, count in sorted((s.by_topic or {}).items()):
        print(f"  {topic:<22} {count:>10,}")
    if result.shift is not None:
        print(f"retimed by {result.shift} ({result.retimed:,} events; {result.unchanged:,} "
              "undecodable records replayed as they were)")  # fmt: skip
    if result.ingested is not None:
        print(f"ingested {result.ingested:,} records into schema {schema} "
              f"({result.dead:,} dead letters)")  # fmt: skip
