"""Consumer step: poll -> decode -> one database transaction per batch -> commit the offsets."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from ioc.core.contracts import EARLIEST_EVENT_TIME, Rejected, WardIndex, decode_event
from ioc.core.db.connection import Connect
from ioc.core.feeds import Feed
from ioc.core.sinks import TopicName
from streams.ingest.batch_store import Abandoned, BatchStore, Decoded, Route, Stored
from streams.ingest.stall import Stall, Stalls, failure_line
from streams.ingest.writers.base import Accepted, FeedWriter
from streams.transport.source import DeadLetter, FetchFailed, Record, RecordSource, next_offsets

__all__ = ["Abandoned", "Decoded", "IngestOptions", "Ingestor", "Route", "decode_batch"]

log = logging.getLogger("streams.ingest.loop")


@dataclass(frozen=True)
class IngestOptions:
    max_batch: int = 10_000
    poll_timeout_s: float = 0.2
    # Health rows are refreshed at least this often even when no records arrive (lag, rate).
    heartbeat_s: float = 5.0
    rate_window_s: float = 10.0
    db_backoff_initial_s: float = 0.2
    db_backoff_cap_s: float = 5.0
    log_every_s: float = 10.0
    # Overlap the database's work on one batch with polling and decoding the next.
    pipeline: bool = True


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
    store_cpu_s: float
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
    decode_s: float = 0.0
    store_s: float = 0.0
    store_cpu_s: float = 0.0
    commit_s: float = 0.0

    def add(self, m: BatchMetrics) -> None:
        self.decode_s += m.decode_s
        self.store_s += m.store_s
        self.store_cpu_s += m.store_cpu_s
        self.commit_s += m.commit_s
        self.records += m.records
        self.inserted += m.inserted
        self.duplicates += m.duplicates
        self.dead += m.dead
        self.batches += 1
        self.last_commit_at = m.committed_at


@dataclass
class _InFlight:
    records: Sequence[Record]
    decoded: Decoded
    decode_s: float
    future: Future[Stored] | None = None
    result: Stored | None = None


def _stored(job: _InFlight) -> Stored:
    """The store's result for a batch, waiting for the worker if it is still running."""
    stored = job.result if job.future is None else job.future.result()
    assert stored is not None  # noqa: S101 - set on the synchronous path
    return stored


def decode_batch(
    records: Sequence[Record],
    routes: Mapping[str, Route],
    wards: WardIndex,
    now: datetime,
    earliest: datetime = EARLIEST_EVENT_TIME,
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
            ev = decode_event(
                rec.value,
                wards=wards,
                now=now,
                expected_schema=route.feed.topic,
                earliest=earliest,
            )
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
    """The loop shared by the Kafka and in-process sources.

    Exactly once in effect: offsets are committed only after the transaction holding the batch
    has committed, and the tables absorb redelivered events by their keys. A lost database
    keeps the batch in memory and retries it after reconnecting; a bad message becomes a dead
    letter; a batch that cannot be fetched or decompressed is logged, retried by the source and
    shown as a stall. Pipelined: while batch n is in its transaction (a worker thread), batch
    n+1 is polled and decoded; batch n's offsets are committed by the polling thread once its
    transaction is done.

    The source (poll, commit, lag) is used only by the calling thread; the database only by
    the store, which runs on one worker thread when pipelined.
    """

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
        member: str | None = None,
        earliest: datetime = EARLIEST_EVENT_TIME,
    ) -> None:
        self.source = source
        # Events dated before this are dead-lettered as too_old (IOC_EARLIEST_EVENT_TIME).
        self._earliest = earliest
        self.routes = dict(routes)
        self.opts = options or IngestOptions()
        self.stop = stop or threading.Event()
        self._wards = wards
        self._clock = clock
        self._wallclock = wallclock
        self._on_batch = on_batch
        self.store = BatchStore(
            routes,
            connect,
            stop=self.stop,
            backoff_initial_s=self.opts.db_backoff_initial_s,
            backoff_cap_s=self.opts.db_backoff_cap_s,
            rate_window_s=self.opts.rate_window_s,
            clock=clock,
            member=member,
        )
        self._executor = (
            ThreadPoolExecutor(1, thread_name_prefix="ingest-store") if self.opts.pipeline else None
        )
        self._inflight: _InFlight | None = None
        self._last_health = self._last_records = clock()
        self._stalls = Stalls()
        self.totals = Totals()

    # -- the loop ---------------------------------------------------------------------------
    def run(self, idle_exit_s: float | None = None) -> Totals:
        """Until stop is set, or nothing arrives for idle_exit_s with no lag left on assigned
        partitions. A batch already handed to the store is finished (and its offsets
        committed) before returning; the source stays open."""
        last_log = self._last_records = self._clock()
        logged = Totals()
        try:
            while not self.stop.is_set():
                self.step()
                now = self._clock()
                if (
                    idle_exit_s is not None
                    and self._inflight is None
                    and now - self._last_records >= idle_exit_s
                    and self._caught_up()
                ):
                    log.info("ingest: idle for %.0f s and caught up, stopping", idle_exit_s)
                    break
                if now - last_log >= self.opts.log_every_s:
                    self._log_progress(now - last_log, logged)
                    logged = Totals(**vars(self.totals))
                    last_log = now
        except Abandoned:
            pass
        finally:
            with contextlib.suppress(Abandoned):
                self.flush()
        return self.totals

    def _caught_up(self) -> bool:
        # While a rebalance waits out a dead member, polls are empty but the stream is not done.
        lag = self.source.lag()
        return bool(lag) and lag is not None and not any(lag.values())

    def step(self) -> BatchMetrics | None:
        """Poll and decode one batch and hand it to the store. Returns the metrics of the batch
        whose offsets this call committed (when pipelined, the previous one), else None."""
        try:
            records = self.source.poll(self.opts.max_batch, self.opts.poll_timeout_s)
        except FetchFailed as exc:
            return self._fetch_failed(exc)
        if self._stalls and records:
            self._log_ended(self._stalls.read(records), "readable again")
        if not records:
            done = self.flush()
            if done is None:
                self._heartbeat()
            return done
        if self.stop.is_set():
            raise Abandoned  # not in the database: the next run reads it again
        t0 = self._last_records = self._clock()
        if self.totals.first_record_at is None:
            self.totals.first_record_at = t0
        decoded = decode_batch(records, self.routes, self._wards, self._wallclock(), self._earliest)
        lag = self._lag_by_feed()
        stalls = self._stall_by_feed()
        job = _InFlight(records, decoded, self._clock() - t0)
        prev, self._inflight = self._inflight, None
        previous = None if prev is None else (prev, _stored(prev))
        if self.stop.is_set():
            if previous is not None:
                self._commit(*previous)
            raise Abandoned
        if self._executor is None:
            if previous is not None:
                self._commit(*previous)
            job.result = self.store.store(decoded, lag, stalls)
            self._inflight = job
            return self.flush()
        # The next batch goes to the store before the previous one's offsets are committed:
        # that commit is a broker round trip (~10 ms a batch) the store need not wait for.
        job.future = self._executor.submit(self.store.store, decoded, lag, stalls)
        self._inflight = job
        return None if previous is None else self._commit(*previous)

    def _fetch_failed(self, exc: FetchFailed) -> BatchMetrics | None:
        """One log line, and the feed's health row says it is stalled and why, at once."""
        done = self.flush()  # the batch in flight is stored first; the store is then free
        self._stalls.failed(exc, self._clock())
        log.warning("%s", failure_line(exc))
        self._last_health = self._clock()
        self.store.heartbeat(self._lag_by_feed(), self._stall_by_feed())
        return done

    def _stall_by_feed(self) -> dict[str, str]:
        if not self._stalls:
            return {}
        by_topic = self._stalls.by_topic(list(self.routes))
        return {self.routes[t].feed.name: why for t, why in by_topic.items() if t in self.routes}

    def _log_ended(self, ended: list[Stall], how: str) -> None:
        now = self._clock()
        for s in ended:
            where = "the broker" if s.topic is None else f"{s.topic}[{s.partition}]"
            log.info(
                "ingest: %s %s after %d failed fetches (stalled %.0f s)",
                where,
                how,
                s.failures,
                now - s.since,
            )

    def flush(self) -> BatchMetrics | None:
        """Wait for the batch in the store, then commit its offsets; None if there was none."""
        job, self._inflight = self._inflight, None
        if job is None:
            return None
        return self._commit(job, _stored(job))

    def _commit(self, job: _InFlight, stored: Stored) -> BatchMetrics:
        """Commit the offsets of a batch that is in the database, and count it."""
        t0 = self._clock()
        self.source.commit(next_offsets(job.records))
        t1 = self._clock()
        deltas = stored.deltas.values()
        metrics = BatchMetrics(
            records=len(job.records),
            accepted=job.decoded.accepted_count,
            inserted=sum(d.inserted for d in deltas),
            duplicates=sum(d.duplicates for d in deltas),
            dead=sum(d.dead for d in deltas),
            decode_s=job.decode_s,
            store_s=stored.seconds,
            store_cpu_s=stored.cpu_s,
            commit_s=t1 - t0,
            db_attempts=stored.attempts,
            committed_at=t1,
        )
        self._last_health = t1
        self.totals.add(metrics)
        if self._on_batch is not None:
            self._on_batch(metrics)
        return metrics

    def _heartbeat(self) -> None:
        """Refresh lag and rate when idle, at most every heartbeat_s (nothing in flight)."""
        now = self._clock()
        if now - self._last_health >= self.opts.heartbeat_s:
            self._last_health = now
            self.store.heartbeat(self._lag_by_feed(), self._stall_by_feed())

    def _lag_by_feed(self) -> dict[str, int | None]:
        lag = self.source.lag()
        if self._stalls:
            self._log_ended(self._stalls.settle(lag), "no longer stalled (moved, or none wait)")
        if lag is None:
            return {}
        # A feed none of whose partitions this member holds adds nothing to the group's lag.
        out: dict[str, int | None] = {r.feed.name: 0 for r in self.routes.values()}
        for tp, n in lag.items():
            route = self.routes.get(tp.topic)
            if route is not None:
                out[route.feed.name] = (out[route.feed.name] or 0) + n
        return out

    def close(self) -> None:
        """Stop the worker, leave a last health row (lag, rate), close the database connection.

        The caller closes the source afterwards.
        """
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.store.connected:
            self.store.heartbeat(self._lag_by_feed(), self._stall_by_feed())
        self.store.close()

    def _log_progress(self, elapsed: float, before: Totals) -> None:
        t = self.totals
        lag = self._lag_by_feed()
        log.info(
            "ingest: %.0f ev/s over %.0f s; total %d records, %d inserted, %d duplicates, "
            "%d dead letters; lag %s%s",
            (t.records - before.records) / elapsed if elapsed > 0 else 0.0,
            elapsed,
            t.records,
            t.inserted,
            t.duplicates,
            t.dead,
            sum(v or 0 for v in lag.values()) if lag else "unknown",
            f"; {len(self._stalls)} partitions stalled" if self._stalls else "",
        )


def build_routes(
    feeds: Iterable[Feed], writers: Mapping[str, FeedWriter], topic: TopicName
) -> dict[str, Route]:
    """Full topic name -> route, for the chosen feeds (writers keyed by feed name)."""
    return {topic(f.topic): Route(f, writers[f.name]) for f in feeds}
