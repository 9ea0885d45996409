"""Consumer -> table step: the table writer of each feed, by feed name (the one registry)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from streams.ingest.writers import air_quality, dossiers, feedback, payments
from streams.ingest.writers.base import FeedWriter

WRITERS: Final[Mapping[str, FeedWriter]] = MappingProxyType(
    {
        w.feed.name: w
        for w in (dossiers.WRITER, payments.WRITER, feedback.WRITER, air_quality.WRITER)
    }
)
