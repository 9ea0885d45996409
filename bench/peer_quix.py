"""The peer of `ioc ingest` in the TimescaleDB benchmark: quix-streams' PostgreSQLSink, as a user
would set it up, reading one topic into raw rows keyed by the event id (ON CONFLICT DO NOTHING).

Run by `python -m bench.timescale ingest` with the peers' own interpreter (bench/peers.lock,
installed into a venv of its own, never into the product's), so this file imports nothing of
the project: argv gives the topic and sizes, IOC_PEER_PG the database (a libpq URL). Prints one
JSON line: events, seconds from the first record to the last checkpoint (sink flushed, offsets
committed), events/s. Then it waits a second with the connection still open, so the parent can
read the server backend's CPU after the last write.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from typing import Any
from urllib.parse import unquote, urlsplit


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--table", default="quix_payments")
    args = parser.parse_args()

    from quixstreams import Application
    from quixstreams.sinks.community.postgresql import PostgreSQLSink

    url = urlsplit(os.environ["IOC_PEER_PG"])
    sink = PostgreSQLSink(
        host=url.hostname or "127.0.0.1",
        port=url.port or 5432,
        dbname=url.path.lstrip("/"),
        user=unquote(url.username or ""),
        password=unquote(url.password or ""),
        table_name=args.table,
        schema_name=args.schema,
        primary_key_columns="event_id",
        on_conflict_do_nothing=True,  # redelivered events are absorbed by the key
    )
    first: list[float] = []

    def seen(value: Any) -> None:
        if not first:
            first.append(time.monotonic())

    with tempfile.TemporaryDirectory(prefix="bench-quix-") as state_dir:
        app = Application(
            broker_address=args.bootstrap,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            state_dir=state_dir,
            loglevel=logging.WARNING,
        )
        sdf = app.dataframe(app.topic(args.topic, value_deserializer="json"))
        sdf = sdf.update(seen)
        sdf.sink(sink)
        app.run(count=args.events, timeout=60, collect=False)
        end = time.monotonic()
    seconds = end - first[0] if first else 0.0
    print(
        json.dumps(
            {
                "events": args.events,
                "seconds": round(seconds, 3),
                "events_per_s": round(args.events / seconds) if seconds else None,
            }
        ),
        flush=True,
    )
    time.sleep(1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
