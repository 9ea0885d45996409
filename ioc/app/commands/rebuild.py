"""Entry point of time travel from Kafka: `ioc rebuild` fills a fresh schema from a set time."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from datetime import UTC, datetime

from ioc.app.cli import CommandError
from ioc.app.commands.streaming import feed_names, parse_time, stop_on_signals
from ioc.app.connect import connector, database_url, kafka_bootstrap
from ioc.app.settings import Settings
from ioc.core.errors import NoDatabaseError

# A schema name that needs no quoting anywhere (PostgreSQL's identifier limit is 63 bytes).
_SCHEMA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rebuild`."""
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


def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    """Rebuild the tables from Kafka into a fresh schema."""
    from ioc.core.citypack import load_pack
    from streams.ingest.setup import IngestSetup
    from streams.replay.rebuild import RebuildError, prepare_schema, rebuild

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
    feeds = feed_names(args.feeds)
    try:
        admin_url = database_url(settings, "admin")
        writer_url = database_url(settings, "writer")
    except NoDatabaseError as exc:
        raise CommandError(str(exc)) from None
    into = IngestSetup(
        connect=connector(writer_url, schema, "ioc-rebuild"),
        wards=load_pack(settings.city_pack),
        topic_name=settings.topic,
        earliest=settings.earliest_event_time,
    )
    try:
        result = rebuild(
            into,
            prepare=lambda: prepare_schema(admin_url, schema),
            bootstrap=kafka_bootstrap(settings),
            group=group,
            start=start,
            feeds=feeds,
            stop=stop_on_signals(),
        )
    except RebuildError as exc:
        raise CommandError(str(exc)) from None
    print(f"rebuilt schema {schema} from {result.records:,} records ({result.inserted:,} "
          f"inserted, {result.dead:,} dead letters) with group {group}; use it with "
          f"IOC_DB_SCHEMA={schema}")  # fmt: skip
    return 0
