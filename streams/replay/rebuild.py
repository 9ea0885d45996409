"""Consumer step, run again: rebuild the tables from Kafka into a fresh schema, from a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ioc.core.errors import IocError
from ioc.core.feeds import BY_NAME
from streams.ingest.loop import Abandoned
from streams.ingest.setup import IngestSetup
from streams.transport.kafka_assign import open_consumer, partitions_of
from streams.transport.source import Record, RecordSource, TopicPartition

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
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    consumer = open_consumer(
        bootstrap, group=group, client_id="ioc-rebuild", error=RebuildError, factory=factory
    )
    try:
        tps = partitions_of(consumer, topics, bootstrap, RebuildError)
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        offsets = _offsets_at(consumer, tps, ends, start)
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


def _offsets_at(
    consumer: Any, tps: list[Any], ends: Mapping[Any, int], start: datetime | None
) -> dict[Any, int]:
    """Each partition's first offset at or after `start` (Kafka's offsets-for-times)."""
    if start is None:
        return dict(consumer.beginning_offsets(tps))
    ms = int(start.timestamp() * 1000)
    found = consumer.offsets_for_times({tp: ms for tp in tps})
    # No record at or after the time: start at the end (nothing to rebuild there).
    return {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in tps}


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


def prepare_schema(admin_url: str, schema: str) -> None:
    """Check that `schema` holds no events yet, then migrate it (as the admin role)."""
    import psycopg

    from ioc.core.db.migrate import MigrationError, migrate

    try:
        check_fresh(admin_url, schema)
        migrate(admin_url, schema=schema)
    except (MigrationError, psycopg.Error) as exc:
        detail = " ".join(str(exc).split())
        raise RebuildError(f"cannot prepare schema {schema}: {detail}") from None


def rebuild(
    into: IngestSetup,
    *,
    prepare: Callable[[], None],
    bootstrap: str,
    group: str,
    start: datetime | None,
    feeds: tuple[str, ...],
    stop: threading.Event,
) -> Rebuilt:
    """prepare() the fresh schema, reset `group` to `start`, and ingest with `into` (whose
    connections use that schema) up to the end offsets the topics had when this began.

    A consumer group of its own is set to each partition's offset at the start time (the
    earliest retained records when no time is given) and the ordinary ingest loop reads the
    partitions, assigned rather than subscribed (no rebalance), until each reaches its end;
    records produced meanwhile are left for the live consumer. Because ingest is exactly once
    in effect and case state is recomputed from all of a case's events, the rebuilt tables equal
    the original ones when the original ingested the same records.
    """
    prepare()
    routes = into.routes([BY_NAME[f] for f in feeds])
    starts, ends = reset_group(bootstrap, group, list(routes), start)
    log.info(
        "rebuild: %d records to ingest (group %s)",
        sum(max(0, ends[tp] - starts[tp]) for tp in ends),
        group,
    )
    source = BoundedSource(_assigned_source(bootstrap, group, starts, stop), starts, ends)
    ingestor = into.ingestor(source, routes, stop=stop)
    totals = ingestor.totals
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
    return Rebuilt(totals.records, totals.inserted, totals.dead, starts, ends)


def _assigned_source(
    bootstrap: str, group: str, starts: Mapping[TopicPartition, int], stop: threading.Event
) -> RecordSource:
    """The one Kafka source, over the partitions at `starts`; RebuildError if stopped first."""
    from kafka.errors import KafkaError

    from streams.transport.kafka_source import BrokerUnavailable, KafkaSource

    try:
        return KafkaSource.assigned(bootstrap, group, starts, stop=stop, client_id="ioc-rebuild")
    except BrokerUnavailable:
        raise RebuildError(f"stopped before Kafka at {bootstrap} answered") from None
    except KafkaError as exc:
        raise RebuildError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
