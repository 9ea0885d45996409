"""Consumer step, wired: what an ingest loop needs besides its source, given by the application."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ioc.core.contracts import EARLIEST_EVENT_TIME, WardIndex
from ioc.core.db.connection import Connect
from ioc.core.feeds import Feed
from ioc.core.sinks import TopicName
from streams.ingest.loop import IngestOptions, Ingestor, Route, build_routes
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import RecordSource


@dataclass(frozen=True)
class IngestSetup:
    """The database (a connection factory for the schema to fill), the wards that place events,
    the full topic names, and the earliest event time accepted (IOC_EARLIEST_EVENT_TIME)."""

    connect: Connect
    wards: WardIndex
    topic_name: TopicName
    earliest: datetime = EARLIEST_EVENT_TIME

    def routes(self, feeds: Iterable[Feed]) -> dict[str, Route]:
        """Full topic name -> route, with each feed's writer from the one registry."""
        return build_routes(feeds, WRITERS, self.topic_name)

    def ingestor(
        self,
        source: RecordSource,
        routes: Mapping[str, Route],
        *,
        stop: threading.Event,
        options: IngestOptions | None = None,
    ) -> Ingestor:
        """The ingest loop from `source` over `routes` into the database."""
        return Ingestor(
            source,
            routes,
            self.connect,
            self.wards,
            options=options,
            stop=stop,
            earliest=self.earliest,
        )
