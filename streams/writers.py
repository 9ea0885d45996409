"""Consumer step: the table writer of each feed, by feed name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from streams import air_quality, dossiers, feedback, payments
from streams.writer import FeedWriter

WRITERS: Final[Mapping[str, FeedWriter]] = MappingProxyType(
    {
        "dossiers": dossiers.WRITER,
        "payments": payments.WRITER,
        "feedback": feedback.WRITER,
        "air_quality": air_quality.WRITER,
    }
)
