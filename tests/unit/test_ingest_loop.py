"""The ingest loop with a fake source and a fake database: batching, offsets, outages, poison."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from kafka.consumer.fetcher import ConsumerRecord

from ioc.core.contracts import PaymentEvent, decode_event, encode_event
from ioc.core.feeds import BY_NAME
from streams.ingest.loop import IngestOptions, Ingestor, Route, decode_batch
from streams.ingest.writers.base import Accepted, WriteResult
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord, TopicPartition, next_offsets

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
TOPIC = "t.ioc.payments.v1"
WARDS = frozenset({"06649", "06652"})


class Wards:
    def __contains__(self, code: str) -> bool:
        return code in WARDS

    def ward_at(self, lat: float, lon: float) -> str | None:
        return None


def payment(i: int, ward: str = "06649") -> bytes:
    return encode_event(
        PaymentEvent(
            event_id=f"pay-{i}",
            event_time=NOW - timedelta(minutes=i),
            payment_id=f"P{i}",
            merchant_id=f"M{i % 7}",
            ward_code=ward,
            merchant_type="shop",
            channel="vietqr",
            amount_vnd=1000 + i,
            status="succeeded",
        )
    )


# -- fakes -------------------------------------------------------------------------------------
@dataclass
class FakeSource:
    """Partitions of records; poll hands out up to max_records from the positions."""

    logs: dict[TopicPartition, list[SourceRecord]]
    journal: list[str]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    closed: bool = False

    @classmethod
    def of(cls, values: Sequence[bytes], journal: list[str], partitions: int = 2) -> FakeSource:
        logs: dict[TopicPartition, list[SourceRecord]] = {
            TopicPartition(TOPIC, p): [] for p in range(partitions)
        }
        for i, v in enumerate(values):
            tp = TopicPartition(TOPIC, i % partitions)
            logs[tp].append(SourceRecord(TOPIC, tp.partition, len(logs[tp]), b"k", v, 0))
        return cls(logs, journal)

    def poll(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        out: list[SourceRecord] = []
        for tp, recs in self.logs.items():
            pos = self.positions.get(tp, self.committed.get(tp, 0))
            chunk = recs[pos : pos + max_records - len(out)]
            out.extend(chunk)
            self.positions[tp] = pos + len(chunk)
        self.journal.append(f"poll {len(out)}")
        return out

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.journal.append("offsets")
        self.committed.update(offsets)

    def rewind(self) -> None:
        self.positions.clear()

    def lag(self) -> Mapping[TopicPartition, int] | None:
        return {tp: len(r) - self.positions.get(tp, 0) for tp, r in self.logs.items()}

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeDB:
    """Committed state; a transaction applies its pending rows only when it ends cleanly."""

    journal: list[str]
    events: dict[str, bytes] = field(default_factory=dict)
    dead: dict[tuple[str, int, int], tuple[str, str, bytes]] = field(default_factory=dict)
    health: dict[str, Any] = field(default_factory=dict)
    down: int = 0  # connection attempts still to refuse
    break_next_txn: bool = False
    deadlock_next_txn: bool = False
    connects: int = 0
    left: list[str] = field(default_factory=list)  # members that removed their health rows
    stalls: dict[str, str | None] = field(default_factory=dict)  # feed -> last stall written


class FakeConn:
    def __init__(self, db: FakeDB) -> None:
        self.db = db
        self.closed = False
        self.pending_events: dict[str, bytes] = {}
        self.pending_dead: dict[tuple[str, int, int], tuple[str, str, bytes]] = {}
        self.pending_health: list[Mapping[str, Any]] = []

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.pending_events, self.pending_dead, self.pending_health = {}, {}, []
        yield
        if self.db.break_next_txn:
            self.db.break_next_txn = False
            self.closed = True
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        if self.db.deadlock_next_txn:
            self.db.deadlock_next_txn = False  # rolled back whole; the connection stays usable
            raise psycopg.errors.DeadlockDetected("deadlock detected")
        self.db.events.update(self.pending_events)
        self.db.dead.update(self.pending_dead)
        for params in self.pending_health:
            for i, feed in enumerate(params["feed"]):
                row = self.db.health.setdefault(feed, {"events": 0, "dead": 0, "dupes": 0})
                row["events"] += params["n"][i]
                row["dead"] += params["x"][i]
                row["dupes"] += params["d"][i]
                row["lag"] = params["lag"][i]
                self.db.stalls[feed] = params["stall"][i]
        self.db.journal.append("db-commit")

    def execute(self, query: str, params: Mapping[str, Any] | None = None) -> Any:
        assert params is not None
        if "INTO dead_letters" in query:
            new = []
            for i, topic in enumerate(params["topic"]):
                key = (topic, params["part"][i], params["off"][i])
                if key not in self.db.dead and key not in self.pending_dead:
                    self.pending_dead[key] = (
                        params["reason"][i],
                        params["detail"][i],
                        params["raw"][i],
                    )
                    new.append((topic,))
            return _Rows(new)
        if "INTO feed_health" in query:
            self.pending_health.append(params)
            return _Rows([])
        if "DELETE FROM feed_health_members" in query:
            self.db.left.append(params["member"])
            return _Rows([])
        raise AssertionError(f"unexpected query {query[:40]}")

    def close(self) -> None:
        self.closed = True


@dataclass
class _Rows:
    rows: list[tuple[Any, ...]]

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class FakeWriter:
    """Stores event bytes by event_id; refuses (DataError) any event id in `refuse`."""

    feed = BY_NAME["payments"]
    staging: tuple[str, ...] = ()

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.refuse = refuse
        self.calls = 0

    def write(self, conn: Any, batch: Sequence[Accepted]) -> WriteResult:
        self.calls += 1
        bad = [a for a in batch if a.event.event_id in self.refuse]
        if bad:
            raise psycopg.DataError(f"value refused for {bad[0].event.event_id}")
        res = WriteResult()
        for a in batch:
            eid = a.event.event_id
            if eid in conn.db.events or eid in conn.pending_events:
                res.duplicates += 1
            else:
                conn.pending_events[eid] = a.record.value
                res.inserted += 1
        return res


def make(
    values: Sequence[bytes],
    *,
    max_batch: int = 5,
    writer: FakeWriter | None = None,
    stop: threading.Event | None = None,
    pipeline: bool = False,
    quiet_feed: bool = False,
) -> tuple[Ingestor, FakeSource, FakeDB]:
    journal: list[str] = []
    source = FakeSource.of(values, journal)
    db = FakeDB(journal)

    def connect() -> Any:
        db.connects += 1
        if db.down > 0:
            db.down -= 1
            raise psycopg.OperationalError("connection refused")
        return FakeConn(db)

    opts = IngestOptions(
        max_batch=max_batch,
        poll_timeout_s=0.0,
        db_backoff_initial_s=0.001,
        db_backoff_cap_s=0.004,
        pipeline=pipeline,
    )
    routes = {TOPIC: Route(BY_NAME["payments"], writer or FakeWriter())}
    if quiet_feed:  # a second feed whose topic sends nothing
        routes["t.ioc.dossiers.v1"] = Route(BY_NAME["dossiers"], FakeWriter())
    ing = Ingestor(
        source,
        routes,
        connect,
        Wards(),
        options=opts,
        stop=stop,
        wallclock=lambda: NOW,
    )
    return ing, source, db


def drain(ing: Ingestor) -> None:
    while ing.step() is not None:
        pass


# -- tests -------------------------------------------------------------------------------------
def test_every_event_stored_once_and_offsets_committed_after_the_database() -> None:
    values = [payment(i) for i in range(13)]
    ing, source, db = make(values, max_batch=5)
    drain(ing)
    assert db.events == {f"pay-{i}": values[i] for i in range(13)}
    assert source.committed == {TopicPartition(TOPIC, 0): 7, TopicPartition(TOPIC, 1): 6}
    # Each batch: poll, then the database commit, then (and only then) the offsets.
    batches = [e for e in source.journal if e != "poll 0"]
    assert batches == ["poll 5", "db-commit", "offsets"] * 2 + ["poll 3", "db-commit", "offsets"]
    assert ing.totals.records == ing.totals.inserted == 13
    assert db.health["payments"]["events"] == 13


def test_pipelined_loop_commits_each_batch_offsets_only_after_its_transaction() -> None:
    values = [payment(i) for i in range(23)] + [b"nope"]
    ing, source, db = make(values, max_batch=4, pipeline=True)
    totals = ing.run(idle_exit_s=0.0)
    ing.close()
    assert db.events == {f"pay-{i}": values[i] for i in range(23)}
    assert len(db.dead) == 1
    assert totals.records == 24 and totals.batches == 6
    assert source.committed == {TopicPartition(TOPIC, 0): 12, TopicPartition(TOPIC, 1): 12}
    commits = 0
    for entry in source.journal:
        if entry == "db-commit":
            commits += 1
        elif entry == "offsets":
            commits -= 1
            assert commits >= 0, source.journal  # offsets never ahead of the database


class _RecordingWriter(FakeWriter):
    def __init__(self) -> None:
        super().__init__()
        self.started = [threading.Event() for _ in range(8)]

    def write(self, conn: Any, batch: Sequence[Accepted]) -> WriteResult:
        self.started[min(self.calls, 7)].set()
        return super().write(conn, batch)


def test_pipelined_store_does_not_wait_for_the_offset_commit() -> None:
    # The offsets of batch k go to the broker while batch k+1 is already being stored.
    writer = _RecordingWriter()
    ing, source, db = make(
        [payment(i) for i in range(12)], max_batch=4, pipeline=True, writer=writer
    )
    commit = source.commit
    overlapped: list[bool] = []

    def slow_commit(offsets: Mapping[TopicPartition, int]) -> None:
        k = len(overlapped)
        overlapped.append(k + 1 < 3 and writer.started[k + 1].wait(timeout=5))
        commit(offsets)

    source.commit = slow_commit  # type: ignore[method-assign]
    ing.run(idle_exit_s=0.0)
    ing.close()
    assert overlapped == [True, True, False]
    assert len(db.events) == 12


def test_redelivered_batch_counts_nothing_twice() -> None:
    values = [payment(i) for i in range(6)] + [b"{not json"]
    ing, source, db = make(values, max_batch=100)
    drain(ing)
    source.committed.clear()  # as if the offset commit had been lost in a crash
    source.positions.clear()
    drain(ing)
    assert len(db.events) == 6
    assert len(db.dead) == 1
    assert db.health["payments"] == {"events": 6, "dead": 1, "dupes": 6, "lag": 0}


def test_rejected_messages_become_dead_letters_with_their_reason() -> None:
    huge = b'{"schema": "ioc.payments.v1", "pad": "' + b"x" * 70_000 + b'"}'
    values = [payment(0), b"\xff\xfe", payment(1, ward="99999"), huge, payment(2)]
    ing, source, db = make(values, max_batch=100)
    drain(ing)
    assert set(db.events) == {"pay-0", "pay-2"}
    reasons = {raw: reason for reason, _, raw in db.dead.values()}
    assert reasons == {b"\xff\xfe": "not_json", values[2]: "unknown_ward", huge: "oversized"}
    assert db.dead[(TOPIC, 1, 1)][2] == huge  # kept whole, at its own position
    assert source.committed == {TopicPartition(TOPIC, 0): 3, TopicPartition(TOPIC, 1): 2}


def test_database_outage_keeps_the_batch_and_retries_it() -> None:
    values = [payment(i) for i in range(10)]
    ing, source, db = make(values, max_batch=10)
    db.down = 4
    metrics = ing.step()
    assert metrics is not None and metrics.db_attempts == 5
    assert db.connects == 5
    assert len(db.events) == 10
    assert source.journal.count("offsets") == 1


def test_connection_lost_at_commit_retries_without_double_counting() -> None:
    values = [payment(i) for i in range(8)]
    ing, _source, db = make(values, max_batch=8)
    db.break_next_txn = True
    metrics = ing.step()
    assert metrics is not None and metrics.db_attempts == 2 and metrics.inserted == 8
    assert db.connects == 2  # the broken connection was replaced
    assert db.health["payments"]["events"] == 8


def test_deadlock_with_another_member_runs_the_batch_again_on_the_same_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = [payment(i) for i in range(8)]
    ing, source, db = make(values, max_batch=8)
    db.deadlock_next_txn = True
    with caplog.at_level("WARNING", logger="streams.ingest.loop"):
        metrics = ing.step()
    assert metrics is not None and metrics.db_attempts == 2 and metrics.inserted == 8
    assert db.connects == 1
    assert db.health["payments"]["events"] == 8
    assert source.journal.count("offsets") == 1
    assert "conflicted with another consumer" in caplog.text


def test_every_feeds_health_row_is_refreshed_by_a_batch_of_one_feed() -> None:
    ing, _source, db = make([payment(i) for i in range(4)], max_batch=4, quiet_feed=True)
    ing.step()
    assert db.health["payments"]["events"] == 4
    # The quiet feed's row was written too (its lag and rate), adding nothing to its counts.
    assert db.health["dossiers"] == {"events": 0, "dead": 0, "dupes": 0, "lag": 0}


def test_close_takes_this_members_health_rows_out() -> None:
    ing, _source, db = make([payment(i) for i in range(3)], max_batch=3)
    ing.step()
    ing.close()
    assert db.left == [ing.store.member]
    assert ing.store.member.endswith(f":{os.getpid()}")


def test_stop_during_outage_abandons_the_batch_uncommitted() -> None:
    stop = threading.Event()
    values = [payment(i) for i in range(4)]
    ing, source, db = make(values, stop=stop)
    db.down = 10**6
    original = db.down

    def stopper(_: object) -> None:
        stop.set()

    ing.stop.wait = lambda timeout=None: (stopper(None), True)[1]  # type: ignore[method-assign]
    totals = ing.run()
    assert totals.records == 0 and db.events == {} and source.committed == {}
    assert db.down == original - 1  # one attempt, then stopped instead of waiting


def test_stop_after_poll_leaves_the_batch_for_the_next_run() -> None:
    stop = threading.Event()
    ing, source, db = make([payment(i) for i in range(3)], stop=stop)
    real_poll = source.poll

    def poll_then_stop(n: int, t: float) -> Sequence[SourceRecord]:
        out = real_poll(n, t)
        stop.set()
        return out

    source.poll = poll_then_stop  # type: ignore[method-assign]
    ing.run()
    assert db.events == {} and source.committed == {}


def test_an_event_the_database_refuses_is_isolated_as_a_dead_letter() -> None:
    values = [payment(i) for i in range(9)]
    writer = FakeWriter(refuse=frozenset({"pay-5"}))
    ing, source, db = make(values, max_batch=9, writer=writer)
    drain(ing)
    assert set(db.events) == {f"pay-{i}" for i in range(9)} - {"pay-5"}
    [(reason, detail, raw)] = db.dead.values()
    assert reason == "bad_value" and raw == values[5] and "pay-5" in detail
    assert source.committed == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 4}


def test_run_exits_after_the_idle_time() -> None:
    now = [0.0]
    ing, source, _db = make([payment(0)])
    real_poll = source.poll

    def poll_one_second(n: int, t: float) -> Sequence[SourceRecord]:
        now[0] += 1.0
        return real_poll(n, t)

    source.poll = poll_one_second  # type: ignore[method-assign]
    ing._clock = lambda: now[0]
    totals = ing.run(idle_exit_s=5)
    assert totals.records == 1
    assert source.journal.count("poll 0") == 5


def test_decode_batch_groups_by_topic_and_names_unknown_topics() -> None:
    recs = [
        SourceRecord(TOPIC, 0, 0, None, payment(0), 0),
        SourceRecord("other", 0, 0, None, payment(1), 0),
    ]
    route = Route(BY_NAME["payments"], FakeWriter())
    out = decode_batch(recs, {TOPIC: route}, Wards(), NOW)
    assert [a.event.event_id for a in out.accepted[TOPIC]] == ["pay-0"]
    assert [(d.record.topic, d.reason) for d in out.dead] == [("other", "unknown_schema")]


def test_payment_on_the_wrong_topic_is_rejected() -> None:
    recs = [SourceRecord("t.ioc.dossiers.v1", 0, 0, None, payment(0), 0)]
    route = Route(BY_NAME["dossiers"], FakeWriter())
    out = decode_batch(recs, {"t.ioc.dossiers.v1": route}, Wards(), NOW)
    assert out.accepted == {} and out.dead[0].reason == "unknown_schema"


def test_next_offsets_is_one_past_the_last_of_each_partition() -> None:
    recs = [SourceRecord("a", p, o, None, b"", 0) for p, o in [(0, 4), (1, 9), (0, 2), (0, 7)]]
    assert next_offsets(recs) == {TopicPartition("a", 0): 8, TopicPartition("a", 1): 10}


@pytest.mark.parametrize("down", [1, 3])
def test_lag_reaches_the_health_row(down: int) -> None:
    ing, _source, db = make([payment(i) for i in range(10)], max_batch=4)
    db.down = down
    ing.step()
    assert db.health["payments"]["lag"] == 6


def test_decode_batch_reads_kafka_pythons_records() -> None:
    # KafkaSource hands these over as they are (streams.transport.source.Record), not copied.
    def record(offset: int, value: bytes) -> ConsumerRecord:
        return ConsumerRecord(TOPIC, 0, 0, offset, 1_000, 0, None, value, [], None, -1, 9, -1)

    good, bad = record(7, payment(1)), record(8, b"{not json")
    routes = {TOPIC: Route(BY_NAME["payments"], WRITERS["payments"])}
    decoded = decode_batch([good, bad], routes, Wards(), NOW)
    [accepted] = decoded.accepted[TOPIC]
    assert accepted.record is good and accepted.event == decode_event(
        payment(1), wards=Wards(), now=NOW
    )
    [dead] = decoded.dead
    assert dead.record is bad and dead.reason == "not_json"
