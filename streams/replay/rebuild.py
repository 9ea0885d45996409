"""Consumer step, run again: rebuild the tables from Kafka into a fresh schema from a point in time.

A consumer group of its own is set to each partition's offset at the start time (Kafka's
offsets-for-times; the earliest retained records when no time is given), the fresh schema is
migrated, and the ordinary ingest loop reads the partitions (assigned, not subscribed: no
rebalance) until every one reaches the end offset it had when the rebuild began; records
produced meanwhile are left for the live consumer. Because ingest is exactly once in effect and
case state is recomputed from all of a case's events, the rebuilt tables equal the original
ones when the original ingested the same records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.app.settings import Settings
from ioc.core.errors import IocError
from ioc.core.feeds import BY_NAME
from streams.transport.source import Record, RecordSource, TopicPartition, flatten

log = logging.getLogger("streams.replay.rebuild")
EVENT_TABLES = ("dossier_events", "payment_events", "feedback_events", "air_quality_readings")


class RebuildError(IocError):
    """The rebuild cannot go ahead; the message is one line."""


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild ingested."""

    records: int
    inserted: int
    dead: int
    start_offsets: Mapping[TopicPartition, int]
    end_offsets: Mapping[TopicPartition, int]


def reset_group(
    bootstrap: str,
    group: str,
    topics: Sequence[str],
    start: datetime | None,
    *,
    factory: Callable[..., Any] | None = None,
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Commit, for `group`, each partition's offset at `start` (or its first retained offset);
    returns (those offsets, the end offsets now)."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata
    from kafka.structs import TopicPartition as KafkaTP

    try:
        consumer = (factory or KafkaConsumer)(
            bootstrap_servers=[b.strip() for b in bootstrap.split(",") if b.strip()],
            group_id=group,
            enable_auto_commit=False,
            client_id="ioc-rebuild",
        )
    except KafkaError as exc:
        raise RebuildError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    try:
        tps: list[Any] = []
        for name in topics:
            parts = consumer.partitions_for_topic(name)
            if not parts:
                raise RebuildError(f"topic {name} does not exist on {bootstrap}")
            tps.extend(KafkaTP(name, p) for p in sorted(parts))
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        if start is None:
            offsets = consumer.beginning_offsets(tps)
        else:
            ms = int(start.timestamp() * 1000)
            found = consumer.offsets_for_times({tp: ms for tp in tps})
            # No record at or after the time: start at the end (nothing to rebuild there).
            offsets = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}
        try:
            consumer.commit({tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})
        except KafkaError as exc:
            raise RebuildError(
                f"cannot reset group {group} ({exc}); is a consumer of that group running?"
            ) from None
    except KafkaError as exc:
        raise RebuildError(f"Kafka: {exc}") from None
    finally:
        consumer.close(autocommit=False)
    as_ours = {TopicPartition(tp.topic, tp.partition): int(off) for tp, off in offsets.items()}
    ends_ours = {TopicPartition(tp.topic, tp.partition): int(off) for tp, off in ends.items()}
    return as_ours, ends_ours


class AssignedKafkaSource:
    """A RecordSource over explicitly assigned partitions, starting at given offsets and
    committing to `group`: no group membership, so no rebalance can stall or split the
    rebuild (the group only stores how far it got)."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        start: Mapping[TopicPartition, int],
        *,
        factory: Callable[..., Any] | None = None,
    ) -> None:
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError
        from kafka.structs import TopicPartition as KafkaTP

        from streams.transport.kafka_source import CONSUMER_TUNING

        try:
            self._consumer: Any = (factory or KafkaConsumer)(
                bootstrap_servers=[b.strip() for b in bootstrap.split(",") if b.strip()],
                group_id=group,
                enable_auto_commit=False,
                client_id="ioc-rebuild",
                **CONSUMER_TUNING,
            )
        except KafkaError as exc:
            raise RebuildError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
        self._tps = {tp: KafkaTP(tp.topic, tp.partition) for tp in start}
        self._committed = dict(start)
        self._consumer.assign(list(self._tps.values()))
        for tp, off in start.items():
            self._consumer.seek(self._tps[tp], off)

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        polled = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        return flatten(polled)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata

        if not offsets:
            return
        try:
            self._consumer.commit(
                {self._tps[tp]: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
            )
        except KafkaError as exc:
            log.warning("rebuild: offset commit failed (%s)", exc)
            return
        self._committed.update(offsets)

    def rewind(self) -> None:
        for tp, off in self._committed.items():
            self._consumer.seek(self._tps[tp], off)

    def lag(self) -> Mapping[TopicPartition, int] | None:
        return None

    def close(self) -> None:
        from kafka.errors import KafkaError

        try:
            self._consumer.close(autocommit=False)
        except KafkaError as exc:
            log.warning("rebuild: close failed (%s)", exc)


class BoundedSource:
    """A RecordSource that stops each partition at a fixed end offset (later records are not
    delivered) and knows, from what it delivered, how much is left."""

    def __init__(
        self,
        inner: RecordSource,
        start: Mapping[TopicPartition, int],
        end: Mapping[TopicPartition, int],
    ) -> None:
        self._inner = inner
        self._end = dict(end)
        self._next = {tp: start.get(tp, 0) for tp in end}

    def poll(self, max_records: int, timeout_s: float) -> Sequence[Record]:
        out = []
        for r in self._inner.poll(max_records, timeout_s):
            tp = TopicPartition(r.topic, r.partition)
            end = self._end.get(tp)
            if end is None or r.offset >= end:
                continue
            out.append(r)
            if r.offset + 1 > self._next[tp]:
                self._next[tp] = r.offset + 1
        return out

    def remaining(self) -> int:
        """Records before the end offsets not yet delivered."""
        return sum(max(0, self._end[tp] - self._next[tp]) for tp in self._end)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._inner.commit(offsets)

    def rewind(self) -> None:
        self._inner.rewind()
        # Redelivery after a rewind starts again at the committed offsets; count from there.
        self._next = {tp: min(off, self._next[tp]) for tp, off in self._next.items()}

    def lag(self) -> Mapping[TopicPartition, int] | None:
        return {tp: max(0, self._end[tp] - self._next[tp]) for tp in self._end}

    def close(self) -> None:
        self._inner.close()


def check_fresh(admin_url: str, schema: str) -> None:
    """RebuildError unless the schema is missing or holds no events."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for table in EVENT_TABLES:
            exists = conn.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %(schema)s AND table_name = %(table)s",
                {"schema": schema, "table": table},
            ).fetchone()
            if exists is None:
                continue
            q = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            row = conn.execute(q).fetchone()
            if row is not None and row[0]:
                raise RebuildError(
                    f"schema {schema} already holds events ({table}); rebuild into a new schema"
                )


def rebuild(
    settings: Settings,
    *,
    schema: str,
    group: str,
    start: datetime | None,
    feeds: tuple[str, ...],
    bootstrap: str,
    stop: threading.Event,
) -> Rebuilt:
    """Migrate `schema`, reset `group` to `start`, ingest up to the current end offsets."""
    import psycopg

    from ioc.app.connect import connector, database_url
    from ioc.core.citypack import load_pack
    from ioc.core.db.migrate import MigrationError, migrate
    from ioc.core.errors import NoDatabaseError
    from streams.ingest.loop import Abandoned, Ingestor, build_routes
    from streams.ingest.writers.registry import WRITERS

    try:
        admin_url = database_url(settings, "admin")
        writer_url = database_url(settings, "writer")
    except NoDatabaseError as exc:
        raise RebuildError(str(exc)) from None
    try:
        check_fresh(admin_url, schema)
        migrate(admin_url, schema=schema)
    except (MigrationError, psycopg.Error) as exc:
        detail = " ".join(str(exc).split())
        raise RebuildError(f"cannot prepare schema {schema}: {detail}") from None
    routes = build_routes([BY_NAME[f] for f in feeds], WRITERS, settings.topic)
    starts, ends = reset_group(bootstrap, group, list(routes), start)
    log.info(
        "rebuild: %d records to ingest into schema %s (group %s)",
        sum(max(0, ends[tp] - starts[tp]) for tp in ends),
        schema,
        group,
    )
    source = BoundedSource(AssignedKafkaSource(bootstrap, group, starts), starts, ends)
    ingestor = Ingestor(
        source,
        routes,
        connector(writer_url, schema, "ioc-rebuild"),
        load_pack(settings.city_pack),
        stop=stop,
        earliest=settings.earliest_event_time,
    )
    try:
        while not stop.is_set() and source.remaining() > 0:
            ingestor.step()
        ingestor.flush()
    except Abandoned:
        pass  # stopped: what was committed stays, the rest is reported below
    finally:
        ingestor.close()
        source.close()
    if source.remaining() > 0:
        raise RebuildError(f"stopped with {source.remaining():,} records not yet rebuilt")
    t = ingestor.totals
    return Rebuilt(t.records, t.inserted, t.dead, starts, ends)
