"""The one feed registry: each feed's name, topic and schema, message key and partitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Feed:
    """A live feed: its short name, base topic (= event schema) and Kafka message key field."""

    name: str
    topic: str
    key_field: str
    partitions: int = 3

    @property
    def schema(self) -> str:
        """The `schema` tag of the feed's events (its contract's name); the base topic by design,
        so that a message's topic and its schema can be checked against each other."""
        return self.topic

    @property
    def index(self) -> int:
        """Position in FEEDS: the order in which feeds are listed and simulator streams merge."""
        return FEEDS.index(self)


# Module constants so that code naming one feed says `PAYMENTS`, never the string "payments".
DOSSIERS: Final = Feed("dossiers", "ioc.dossiers.v1", "dossier_id")
PAYMENTS: Final = Feed("payments", "ioc.payments.v1", "merchant_id")
FEEDBACK: Final = Feed("feedback", "ioc.feedback.v1", "report_id")
AIR_QUALITY: Final = Feed("air_quality", "ioc.air_quality.v1", "station_id")

FEEDS: Final[tuple[Feed, ...]] = (DOSSIERS, PAYMENTS, FEEDBACK, AIR_QUALITY)
FEED_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in FEEDS)
BY_NAME: Final[dict[str, Feed]] = {f.name: f for f in FEEDS}
BY_TOPIC: Final[dict[str, Feed]] = {f.topic: f for f in FEEDS}


def parse_feeds(spec: str) -> tuple[Feed, ...]:
    """'all' or a comma-separated list of feed names; ValueError names the unknown ones."""
    if spec.strip() == "all":
        return FEEDS
    names = [part.strip() for part in spec.split(",") if part.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise ValueError(
            f"unknown feed {', '.join(unknown) or repr(spec)}; choose 'all' or from "
            f"{', '.join(FEED_NAMES)}"
        )
    return tuple(BY_NAME[n] for n in dict.fromkeys(names))
