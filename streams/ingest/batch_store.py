"""Consumer -> table step: store one decoded batch in ONE transaction, retrying a lost database."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ioc.core.db.connection import Connect
from ioc.core.feeds import Feed
from streams.ingest.dead_letters import insert_dead_letters
from streams.ingest.health import FeedDelta, RateWindow, leave_health, this_member, write_health
from streams.ingest.storage import prepare_staging
from streams.ingest.writers.base import Accepted, FeedWriter, WriteResult
from streams.transport.backoff import Backoff
from streams.transport.patience import one_line
from streams.transport.source import DeadLetter, Record

log = logging.getLogger("streams.ingest.loop")

# The database refused this data (a refused event is isolated and dead-lettered)...
REFUSED_DATA_ERRORS = (psycopg.DataError, psycopg.IntegrityError)
# ...as opposed to the database having gone away (the batch is kept and retried).
LINK_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
# Database errors quoted in a log line or a dead letter's detail are cut at this length.
_DETAIL_CHARS = 200
# Another member of the group held rows this batch needed, in an order that closed a cycle
# (PostgreSQL cancels one side), e.g. two members storing the same redelivered events at a
# rebalance. The transaction rolled back whole; running it again is all it takes.
# (psycopg's classes for SQLSTATE 40P01 and 40001 do not derive from TransactionRollback.)
CONFLICT_ERRORS = (
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
    psycopg.errors.TransactionRollback,
)
CONFLICT_RETRY_S = 0.05


class Abandoned(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Stop was requested before the batch committed; nothing of it is stored."""


@dataclass(frozen=True)
class Route:
    """Where records of one full topic name go."""

    feed: Feed
    writer: FeedWriter


@dataclass
class Decoded:
    """A polled batch after decoding: accepted events per full topic, and the rejects."""

    records: Sequence[Record]
    accepted: dict[str, list[Accepted]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)

    @property
    def accepted_count(self) -> int:
        return sum(len(v) for v in self.accepted.values())


@dataclass(frozen=True)
class _Health:
    """What the batch's health rows say besides its counts: lag and stalls per feed."""

    lag: Mapping[str, int | None]
    stalls: Mapping[str, str]


@dataclass(frozen=True)
class Stored:
    """What storing a batch did, per feed, and how many transaction attempts it took."""

    deltas: dict[str, FeedDelta]
    attempts: int
    seconds: float
    # CPU of this thread while storing; seconds - cpu_s is mostly waiting for PostgreSQL.
    cpu_s: float = 0.0


class BatchStore:
    """Owns the database connection of one ingest loop; used by one thread at a time.

    The transaction holds every feed's writes, the dead letters and the feed_health update, so
    a batch is either wholly in the database or not at all. A refused event is isolated by
    splitting the batch and stored as a dead letter; a lost connection is retried with backoff
    until the batch commits or stop is requested.
    """

    def __init__(
        self,
        routes: Mapping[str, Route],
        connect: Connect,
        *,
        stop: threading.Event,
        backoff_initial_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        rate_window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        member: str | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.stop = stop
        # This process's name in feed_health_members (its own lag and rate).
        self.member = member or this_member()
        self._connect = connect
        self._backoff = (backoff_initial_s, backoff_cap_s)
        self._clock = clock
        self._conn: psycopg.Connection[Any] | None = None
        start = clock()
        self._rates = {r.feed.name: RateWindow(rate_window_s, start) for r in routes.values()}

    def store(
        self,
        decoded: Decoded,
        lag: Mapping[str, int | None],
        stalls: Mapping[str, str] | None = None,
    ) -> Stored:
        """Store the batch durably; raises Abandoned if stop comes before it commits. `stalls`:
        feed -> why some of its records cannot be read now (written to the health rows)."""
        t0, c0 = self._clock(), time.thread_time()
        deltas, attempts = self._store_resilient(decoded, _Health(lag, stalls or {}))
        return Stored(deltas, attempts, self._clock() - t0, time.thread_time() - c0)

    def _store_resilient(
        self, decoded: Decoded, health: _Health
    ) -> tuple[dict[str, FeedDelta], int]:
        """If the database refuses some event's data, split the batch to isolate it."""
        try:
            return self._store(decoded, health)
        except REFUSED_DATA_ERRORS as exc:
            if decoded.accepted_count <= 1:
                return self._store(_as_dead(decoded, exc), health)
            first, second = _halves(decoded)
            log.warning(
                "ingest: database refused a batch (%s); splitting it", one_line(exc, _DETAIL_CHARS)
            )
            d1, a1 = self._store_resilient(first, health)
            d2, a2 = self._store_resilient(second, health)
            return _merge(d1, d2), a1 + a2

    def _store(self, decoded: Decoded, health: _Health) -> tuple[dict[str, FeedDelta], int]:
        """One transaction, retried on a lost connection until it commits or stop is set."""
        backoff = Backoff(*self._backoff)
        attempts = 0
        while True:
            if self.stop.is_set() and attempts:
                raise Abandoned
            attempts += 1
            try:
                deltas = self._transact(self._connection(), decoded, health)
            except CONFLICT_ERRORS as exc:
                log.warning(
                    "ingest: batch of %d conflicted with another consumer (%s); running it again",
                    len(decoded.records),
                    one_line(exc, _DETAIL_CHARS),
                )
                if self.stop.wait(CONFLICT_RETRY_S):
                    raise Abandoned from None
                continue
            except LINK_ERRORS as exc:
                self._drop_connection()
                delay = backoff.next_delay()
                log.warning(
                    "ingest: database unavailable (%s); batch of %d kept, retry %d in %.1f s",
                    one_line(exc, _DETAIL_CHARS),
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

    def _transact(
        self, conn: psycopg.Connection[Any], decoded: Decoded, health: _Health
    ) -> dict[str, FeedDelta]:
        # Every feed's row is refreshed, not only those in the batch: a feed that has gone quiet
        # while the others flow must show its rate falling and its lag, not the last busy values
        # (heartbeats come only when the loop is idle).
        deltas = {r.feed.name: FeedDelta() for r in self.routes.values()}
        now = self._clock()
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
                if (route_or_none := self.routes.get(topic)) is not None:
                    deltas.setdefault(route_or_none.feed.name, FeedDelta()).dead += n
            for topic, n in Counter(r.topic for r in decoded.records).items():
                if (route_or_none := self.routes.get(topic)) is not None:
                    deltas.setdefault(route_or_none.feed.name, FeedDelta()).records += n
            rates = {
                feed: window.rate(now, deltas[feed].inserted if feed in deltas else 0)
                for feed, window in self._rates.items()
            }
            write_health(conn, deltas, health.lag, rates, self.member, health.stalls)
        # Only now is the batch durable; the rate windows count it from here on.
        for feed, delta in deltas.items():
            self._rates[feed].add(now, delta.inserted)
        return deltas

    def heartbeat(
        self, lag: Mapping[str, int | None], stalls: Mapping[str, str] | None = None
    ) -> None:
        """Refresh lag, rate and stalls of every feed (no counts); skipped if the database is
        away."""
        now = self._clock()
        deltas = {r.feed.name: FeedDelta() for r in self.routes.values()}
        rates = {feed: w.rate(now) for feed, w in self._rates.items()}
        try:
            conn = self._connection()
            with conn.transaction():
                write_health(conn, deltas, lag, rates, self.member, stalls)
        except LINK_ERRORS as exc:
            self._drop_connection()
            log.warning(
                "ingest: health update skipped, database unavailable (%s)",
                one_line(exc, _DETAIL_CHARS),
            )

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = self._connect()
            prepare_staging(
                conn, sorted({t for r in self.routes.values() for t in r.writer.staging})
            )
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: closing is best effort
                conn.close()

    def close(self) -> None:
        """Take this member's lag and rate out of feed_health_members, then disconnect."""
        if self.connected:
            try:
                conn = self._connection()
                with conn.transaction():
                    leave_health(conn, self.member)
            except LINK_ERRORS as exc:
                log.warning(
                    "ingest: could not remove this member's health rows (%s)",
                    one_line(exc, _DETAIL_CHARS),
                )
        self._drop_connection()


def _as_dead(decoded: Decoded, exc: Exception) -> Decoded:
    """The batch with its (single) accepted event turned into a dead letter."""
    dead = list(decoded.dead)
    for batch in decoded.accepted.values():
        dead.extend(
            DeadLetter(
                a.record, "bad_value", f"database refused it: {one_line(exc, _DETAIL_CHARS)}"
            )
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
