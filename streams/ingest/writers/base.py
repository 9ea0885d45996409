"""Consumer step: the contract between the ingest loop and each feed's table writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import psycopg

from ioc.core.contracts import Event
from ioc.core.feeds import Feed
from streams.transport.source import DeadLetter, Record


@dataclass(frozen=True, slots=True)
class Accepted:
    """A record whose bytes decoded into a valid event of its feed."""

    record: Record
    event: Event


@dataclass(slots=True)
class WriteResult:
    """What one feed's share of a batch did to the tables."""

    inserted: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    last_event_time: datetime | None = None


class FeedWriter(Protocol):
    """Writes one feed's accepted events inside the caller's open transaction."""

    @property
    def feed(self) -> Feed: ...

    @property
    def staging(self) -> tuple[str, ...]:
        """Tables whose rows this writer stages by COPY (streams.ingest.storage.stage_rows)."""
        ...

    def write(self, conn: psycopg.Connection[Any], batch: Sequence[Accepted]) -> WriteResult:
        """Store the events, update case state and rollups; return impossible ones as dead."""
        ...
