"""Consumer step: poll -> decode -> one database transaction per batch -> commit the offsets.

Exactly once in effect: offsets are committed only after the transaction holding the batch has
committed, and the tables absorb redelivered events by their keys. A lost database keeps the
batch in memory and retries it after reconnecting; a bad message becomes a dead letter.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from ioc.contracts import Rejected, WardIndex, decode_event
from streams.backoff import Backoff
from streams.dead_letters import insert_dead_letters
from streams.health import FeedDelta, RateWindow, write_health
from streams.source import DeadLetter, RecordSource, SourceRecord, next_offsets
from streams.topics import Feed
from streams.writer import Accepted, FeedWriter, WriteResult

log = logging.getLogger("streams.ingest")

Connect = Callable[[], psycopg.Connection[Any]]
# Errors that mean "this data cannot be stored", as opposed to "the database went away".
_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
_LINK_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)


class Abandoned(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Stop was requested before the batch entered a transaction; nothing of it is stored."""


@dataclass(frozen=True)
class Route:
    """Where records of one full topic name go."""

    feed: Feed
    writer: FeedWriter


@dataclass(frozen=True)
class IngestOptions:
    max_batch: int = 5000
    poll_timeout_s: float = 0.2
    # Health rows are refreshed at least this often even when no records arrive (lag, rate).
    heartbeat_s: float = 5.0
    rate_window_s: float = 10.0
    db_backoff_initial_s: float = 0.2
    db_backoff_cap_s: float = 5.0
    log_every_s: float = 10.0


@dataclass
class Decoded:
    """A polled batch after decoding: accepted events per full topic, and the rejects."""

    records: Sequence[SourceRecord]
    accepted: dict[str, list[Accepted]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def accepted_count(self) -> int:
        return sum(len(v) for v in self.accepted.values())


@dataclass(frozen=True)
class BatchMetrics:
    """What one batch cost and did; fed to the progress log and the benchmark."""

    records: int
    accepted: int
    inserted: int
    duplicates: int
    dead: int
    decode_s: float
    store_s: float
    commit_s: float
    db_attempts: int
    committed_at: float


@dataclass
class Totals:
    records: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    first_record_at: float | None = None
    last_commit_at: float | None = None

    def add(self, m: BatchMetrics) -> None:
        self.records += m.records
        self.inserted += m.inserted
        self.duplicates += m.duplicates
        self.dead += m.dead
        self.batches += 1
        self.last_commit_at = m.committed_at


def decode_batch(
    records: Sequence[SourceRecord],
    routes: Mapping[str, Route],
    wards: WardIndex,
    now: datetime,
) -> Decoded:
    """Decode and validate every record; anything unacceptable becomes a DeadLetter."""
    out = Decoded(records)
    accepted = out.accepted
    dead = out.dead
    for rec in records:
        route = routes.get(rec.topic)
        if route is None:
            dead.append(DeadLetter(rec, "unknown_schema", f"{rec.topic} is not a feed topic"))
            continue
        try:
            ev = decode_event(rec.value, wards=wards, now=now, expected_schema=route.feed.topic)
        except Rejected as exc:
            dead.append(DeadLetter(rec, exc.reason, exc.detail))
            continue
        except Exception as exc:  # a decoder bug must not stop the consumer for one message
            dead.append(DeadLetter(rec, "bad_value", f"decoder failed: {exc!r}"))
            continue
        batch = accepted.get(rec.topic)
        if batch is None:
            batch = accepted[rec.topic] = []
        batch.append(Accepted(rec, ev))
    return out


class Ingestor:
    """The loop shared by the Kafka and in-process sources."""

    def __init__(
        self,
        source: RecordSource,
        routes: Mapping[str, Route],
        connect: Connect,
        wards: WardIndex,
        *,
        options: IngestOptions | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_batch: Callable[[BatchMetrics], None] | None = None,
    ) -> None:
        self.source = source
        self.routes = dict(routes)
        self.opts = options or IngestOptions()
        self.stop = stop or threading.Event()
        self._connect = connect
        self._wards = wards
        self._clock = clock
        self._wallclock = wallclock
        self._on_batch = on_batch
        self._conn: psycopg.Connection[Any] | None = None
        start = clock()
        window = self.opts.rate_window_s
        self._rates = {r.feed.name: RateWindow(window, start) for r in routes.values()}
        self._last_health = start
        self.totals = Totals()

    # -- the loop ---------------------------------------------------------------------------
    def run(self, idle_exit_s: float | None = None) -> Totals:
        """Until stop is set, or nothing arrives for idle_exit_s with no lag left on assigned
        partitions; the source stays open."""
        last_records = last_log = self._clock()
        logged = Totals()
        while not self.stop.is_set():
            try:
                metrics = self.step()
            except Abandoned:
                break
            now = self._clock()
            if metrics is not None:
                last_records = now
            elif idle_exit_s is not None and now - last_records >= idle_exit_s:
                # Idle means caught up on assigned partitions: while a rebalance is still
                # waiting out a dead member, polls are empty but the stream is not done.
                lag = self.source.lag()
                if lag is not None and lag and not any(lag.values()):
                    log.info("ingest: idle for %.0f s and caught up, stopping", idle_exit_s)
                    break
            if now - last_log >= self.opts.log_every_s:
                self._log_progress(now - last_log, logged)
                logged = Totals(**vars(self.totals))
                last_log = now
        return self.totals

    def step(self) -> BatchMetrics | None:
        """Poll one batch and store it; None when the poll was empty."""
        records = self.source.poll(self.opts.max_batch, self.opts.poll_timeout_s)
        if not records:
            self._heartbeat()
            return None
        if self.stop.is_set():
            raise Abandoned  # not in the database: the next run reads it again
        if self.totals.first_record_at is None:
            self.totals.first_record_at = self._clock()
        t0 = self._clock()
        decoded = decode_batch(records, self.routes, self._wards, self._wallclock())
        t1 = self._clock()
        deltas, attempts = self._store_resilient(decoded)
        t2 = self._clock()
        self.source.commit(next_offsets(records))
        t3 = self._clock()
        metrics = BatchMetrics(
            records=len(records),
            accepted=decoded.accepted_count,
            inserted=sum(d.inserted for d in deltas.values()),
            duplicates=sum(d.duplicates for d in deltas.values()),
            dead=sum(d.dead for d in deltas.values()),
            decode_s=t1 - t0,
            store_s=t2 - t1,
            commit_s=t3 - t2,
            db_attempts=attempts,
            committed_at=t3,
        )
        self.totals.add(metrics)
        if self._on_batch is not None:
            self._on_batch(metrics)
        return metrics

    # -- storing ----------------------------------------------------------------------------
    def _store_resilient(self, decoded: Decoded) -> tuple[dict[str, FeedDelta], int]:
        """Store the batch; if the database refuses some event's data, split to isolate it."""
        try:
            return self._store(decoded)
        except _DATA_ERRORS as exc:
            if decoded.accepted_count <= 1:
                return self._store(_as_dead(decoded, exc))
            first, second = _halves(decoded)
            log.warning("ingest: database refused a batch (%s); splitting it", _one_line(exc))
            d1, a1 = self._store_resilient(first)
            d2, a2 = self._store_resilient(second)
            return _merge(d1, d2), a1 + a2

    def _store(self, decoded: Decoded) -> tuple[dict[str, FeedDelta], int]:
        """One transaction, retried on a lost connection until it commits or stop is set."""
        backoff = Backoff(self.opts.db_backoff_initial_s, self.opts.db_backoff_cap_s)
        attempts = 0
        while True:
            if self.stop.is_set() and attempts:
                raise Abandoned
            attempts += 1
            try:
                conn = self._connection()
                deltas = self._transact(conn, decoded)
            except _LINK_ERRORS as exc:
                self._drop_connection()
                delay = backoff.next_delay()
                log.warning(
                    "ingest: database unavailable (%s); batch of %d kept, retry %d in %.1f s",
                    _one_line(exc),
                    len(decoded.records),
                    backoff.attempts,
                    delay,
                )
                if self.stop.wait(delay):
                    raise Abandoned from None
                continue
            if attempts > 1:
                log.info("ingest: database back after %d attempts; batch stored", attempts)
            return deltas, attempts

    def _transact(self, conn: psycopg.Connection[Any], decoded: Decoded) -> dict[str, FeedDelta]:
        deltas: dict[str, FeedDelta] = {}
        now = self._clock()
        by_topic: Counter[str] = Counter(r.topic for r in decoded.records)
        with conn.transaction():
            dead = list(decoded.dead)
            for topic in sorted(decoded.accepted):
                batch = decoded.accepted[topic]
                route = self.routes[topic]
                result: WriteResult = route.writer.write(conn, batch)
                delta = deltas.setdefault(route.feed.name, FeedDelta())
                delta.inserted += result.inserted
                delta.duplicates += result.duplicates
                delta.add_time(result.last_event_time or max(a.event.event_time for a in batch))
                dead.extend(result.dead)
            for topic, n in insert_dead_letters(conn, dead).items():
                route_or_none = self.routes.get(topic)
                if route_or_none is not None:
                    deltas.setdefault(route_or_none.feed.name, FeedDelta()).dead += n
            for topic, n in by_topic.items():
                route_or_none = self.routes.get(topic)
                if route_or_none is not None:
                    deltas.setdefault(route_or_none.feed.name, FeedDelta()).records += n
            rates = self._rates_after(deltas, now)
            write_health(conn, deltas, self._lag_by_feed(), rates)
        # Only now is the batch durable; the rate windows count it from here on.
        for feed, delta in deltas.items():
            self._rates[feed].add(now, delta.inserted)
        self._last_health = now
        return deltas

    def _rates_after(self, deltas: Mapping[str, FeedDelta], now: float) -> dict[str, float]:
        """Each feed's rate as it will be once this batch counts (without mutating windows)."""
        return {
            feed: window.rate(now, deltas[feed].inserted if feed in deltas else 0)
            for feed, window in self._rates.items()
        }

    def _heartbeat(self, force: bool = False) -> None:
        """Refresh lag and rate of every feed when idle, at most every heartbeat_s."""
        now = self._clock()
        if not force and now - self._last_health < self.opts.heartbeat_s:
            return
        self._last_health = now
        deltas = {r.feed.name: FeedDelta() for r in self.routes.values()}
        rates = {feed: w.rate(now) for feed, w in self._rates.items()}
        try:
            conn = self._connection()
            with conn.transaction():
                write_health(conn, deltas, self._lag_by_feed(), rates)
        except _LINK_ERRORS as exc:
            self._drop_connection()
            log.warning("ingest: health update skipped, database unavailable (%s)", _one_line(exc))

    def _lag_by_feed(self) -> dict[str, int | None]:
        lag = self.source.lag()
        out: dict[str, int | None] = {}
        if lag is None:
            return out
        for tp, n in lag.items():
            route = self.routes.get(tp.topic)
            if route is not None:
                out[route.feed.name] = (out.get(route.feed.name) or 0) + n
        return out

    # -- connection -------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: closing is best effort
                conn.close()

    def close(self) -> None:
        """Leave a last health row (lag, rate) and close the database connection.

        The caller closes the source afterwards.
        """
        if self._conn is not None:
            self._heartbeat(force=True)
        self._drop_connection()

    def _log_progress(self, elapsed: float, before: Totals) -> None:
        t = self.totals
        lag = self._lag_by_feed()
        log.info(
            "ingest: %.0f ev/s over %.0f s; total %d records, %d inserted, %d duplicates, "
            "%d dead letters; lag %s",
            (t.records - before.records) / elapsed if elapsed > 0 else 0.0,
            elapsed,
            t.records,
            t.inserted,
            t.duplicates,
            t.dead,
            sum(v or 0 for v in lag.values()) if lag else "unknown",
        )


def _as_dead(decoded: Decoded, exc: Exception) -> Decoded:
    """The batch with its (single) accepted event turned into a dead letter."""
    dead = list(decoded.dead)
    for batch in decoded.accepted.values():
        dead.extend(
            DeadLetter(a.record, "bad_value", f"database refused it: {_one_line(exc)}")
            for a in batch
        )
    return Decoded(decoded.records, {}, dead)


def _halves(decoded: Decoded) -> tuple[Decoded, Decoded]:
    """Split the accepted events in two; the first half carries the decoder's dead letters."""
    flat = [(topic, a) for topic, batch in decoded.accepted.items() for a in batch]
    mid = len(flat) // 2
    parts: list[Decoded] = []
    for chunk, dead in ((flat[:mid], decoded.dead), (flat[mid:], [])):
        accepted: dict[str, list[Accepted]] = {}
        for topic, a in chunk:
            accepted.setdefault(topic, []).append(a)
        recs = [a.record for _, a in chunk] + [d.record for d in dead]
        parts.append(Decoded(recs, accepted, list(dead)))
    return parts[0], parts[1]


def _merge(a: Mapping[str, FeedDelta], b: Mapping[str, FeedDelta]) -> dict[str, FeedDelta]:
    out: dict[str, FeedDelta] = {}
    for part in (a, b):
        for feed, d in part.items():
            m = out.setdefault(feed, FeedDelta())
            m.records += d.records
            m.inserted += d.inserted
            m.duplicates += d.duplicates
            m.dead += d.dead
            m.add_time(d.last_event_time)
    return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def build_routes(
    feeds: Iterable[Feed], writers: Mapping[str, FeedWriter], topic: Callable[[str], str]
) -> dict[str, Route]:
    """Full topic name -> route, for the chosen feeds (writers keyed by feed name)."""
    return {topic(f.topic): Route(f, writers[f.name]) for f in feeds}
