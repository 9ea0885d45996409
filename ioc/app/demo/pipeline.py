"""Topic and consumer steps of the demo: the in-process bus (or Kafka when given) between the
simulator stream and the ingest loop, which stores what it reads in the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ioc.app.connect import connector
from ioc.app.demo.checks import DemoError, one_line
from ioc.app.demo.feeder import (
    BusOffsets,
    CountingSink,
    Durability,
    FlushedDurability,
    IngestedDurability,
    LiveClock,
)
from ioc.app.demo.plan import Plan
from ioc.app.settings import Settings
from ioc.core.citypack import CityPack
from ioc.core.contracts import VN_TZ
from ioc.core.feeds import FEEDS
from ioc.core.sinks import SinkError
from simulators.core import Item
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from streams.ingest.batch_store import Route
from streams.ingest.loop import IngestOptions, Ingestor
from streams.transport.bus import Bus
from streams.transport.bus_source import BusSource
from streams.transport.kafka_source import BrokerUnavailable, KafkaSource
from streams.transport.sinks import BusSink, KafkaSink
from streams.transport.source import RecordSource

BUS_GROUP = "ioc-demo"
BUS_RETENTION = 25_000  # records kept per partition: bounds memory on long runs


@dataclass(frozen=True)
class Transport:
    """Both ends of the topic step and how the feeder knows what is stored for good."""

    source: RecordSource
    sink: CountingSink
    durability: Durability


def kafka_transport(
    bootstrap: str, settings: Settings, topics: list[str], ingest_stop: threading.Event
) -> Transport:
    """The broker given: topics made if missing; stored once the producer's flush returns."""
    try:
        kafka = KafkaSink(bootstrap, topic_name=settings.topic)
        kafka.ensure_topics(feed.topic for feed in FEEDS)
        source = KafkaSource(bootstrap, settings.consumer_group, topics, stop=ingest_stop)
    except (SinkError, BrokerUnavailable) as exc:
        raise DemoError(f"Kafka at {bootstrap}: {one_line(exc)}") from None
    counting = CountingSink(kafka)
    return Transport(source, counting, FlushedDurability(counting))


def bus_transport(settings: Settings, topics: list[str], stop: threading.Event) -> Transport:
    """The in-process bus: the producer waits while the consumer is too far behind."""
    bus = Bus(retention=BUS_RETENTION)
    for topic in topics:
        bus.create_topic(topic)
    offsets = BusOffsets(bus, BUS_GROUP, topics)
    counting = CountingSink(
        BusSink(bus, topic_name=settings.topic), backlog=offsets.backlog, stop=stop
    )
    return Transport(BusSource(bus, BUS_GROUP, topics), counting, IngestedDurability(offsets))


def build_ingestor(
    source: RecordSource,
    routes: dict[str, Route],
    writer_url: str,
    settings: Settings,
    pack: CityPack,
    clock: LiveClock,
    stop: threading.Event,
) -> Ingestor:
    """The production ingest loop, as `ioc ingest` runs it, writing as the writer role."""
    return Ingestor(
        source,
        routes,
        connector(writer_url, settings.db_schema, "ioc-demo-ingest"),
        pack,
        options=IngestOptions(log_every_s=30.0),
        stop=stop,
        # Accelerated live time runs ahead of the wall clock; events are not "from the
        # future" for the demo's own consumer.
        wallclock=lambda: datetime.fromtimestamp(max(clock.now(), time.time()), UTC),
        earliest=settings.earliest_event_time,
    )


def close_ingest(ingestor: Ingestor, source: RecordSource) -> None:
    """The loop first (it commits what is stored), then the source it read from."""
    try:
        ingestor.close()
    finally:
        source.close()


def stream_items(plan: Plan, pack: CityPack) -> Callable[[], Iterator[Item]]:
    """A fresh generator over the plan's one simulator stream, for each pass."""
    params = replace(SimParams(), volume_scale=plan.stream.volume_scale)
    config = SimConfig(
        start=datetime.fromtimestamp(plan.stream.start, VN_TZ),
        duration=None,
        seed=plan.stream.seed,
        params=params,
    )
    return lambda: generate(config, pack)
