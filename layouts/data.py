"""Callback step's reads: one query per call on an injected pool, cached, or 'unavailable since'."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar

import pandas as pd
import psycopg
from psycopg_pool import ConnectionPool

from ioc.core.citypack import CityPack
from ioc.core.errors import NoDatabaseError
from ioc.core.queries.air_quality import air_quality_kpis
from ioc.core.queries.snapshot import (
    DAY,
    WallSnapshot,
    air_quality_fingerprint,
    all_kpis,
    travel_snapshot,
    wall_snapshot,
)
from ioc.core.queries.timeline import Span, data_span
from ioc.core.queries.ward import PERIOD_HOURS, WardDetail, ward_detail
from ioc.core.queries.window import floor_hour
from ioc.core.targets import DashboardConfig

# Connections with autocommit and the search_path of exactly the configured schema, built by
# the application (ioc.app), which alone knows where the database is.
Pool: TypeAlias = ConnectionPool[psycopg.Connection[Any]]
Clock = Callable[[], datetime]
T = TypeVar("T")
# What a lost or missing database looks like from here: server down or no connection to be had
# in time (the pool's PoolTimeout is a psycopg.OperationalError), tables not migrated.
DATABASE_GONE = (psycopg.Error, NoDatabaseError, OSError)
MAX_SCOPES = 64
# Time travel: a snapshot of the past is reused for this long (the wall refreshes every second
# and rotates KPIs; late or replayed data still shows within a minute).
TRAVEL_TTL_S = 60.0
TRAVEL_CACHE = 32
log = logging.getLogger("ioc.dashboard")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Unavailable:
    """The database could not answer; `since` is when it first failed in this outage."""

    since: datetime
    reason: str


class DataSource:
    """What the pages read, each call one query over one pooled connection, or Unavailable.
    It owns the pool it is given: close() closes it."""

    def __init__(
        self, pool: Pool, pack: CityPack, config: DashboardConfig, clock: Clock = utc_now
    ) -> None:
        self.pool = pool
        self.pack = pack
        self.config = config
        self.clock = clock
        self.wards = [w.code for w in pack.wards]
        self._down_since: datetime | None = None
        self._lock = threading.Lock()
        # Keyed by the wards asked for: a ward-scoped manager's frames (and its "city" row) are
        # computed over its wards only, never sliced from the whole city's.
        self._yesterday: dict[tuple[str, ...], tuple[datetime, datetime, pd.DataFrame]] = {}
        self._air_quality: dict[tuple[str, ...], tuple[tuple[Any, ...], pd.DataFrame]] = {}
        self._travel: OrderedDict[tuple[tuple[str, ...], datetime], tuple[float, WallSnapshot]]
        self._travel = OrderedDict()

    def _query(self, query: Callable[[psycopg.Connection[Any]], T]) -> T:
        with self.pool.connection() as conn:
            try:
                return query(conn)
            except BaseException:
                # Whatever failed may have left the connection in any state: closed, the pool
                # drops it instead of handing it to the next callback.
                conn.close()
                raise

    def read(self, query: Callable[[psycopg.Connection[Any]], T]) -> T | Unavailable:
        """Run `query` on a pooled connection; a failure becomes Unavailable(since first)."""
        try:
            result = self._query(query)
        except DATABASE_GONE as exc:
            text = str(exc).strip().splitlines()
            reason = text[0] if text else type(exc).__name__
            with self._lock:
                first = self._down_since is None
                since = self._down_since = self._down_since or self.clock()
            if first:
                log.warning("database unavailable: %s", reason)
            return Unavailable(since, reason)
        with self._lock:
            recovered, self._down_since = self._down_since is not None, None
        if recovered:
            log.warning("database available again")
        return result

    def _scope(self, wards: Sequence[str] | None) -> tuple[str, ...]:
        return tuple(self.wards if wards is None else wards)

    @staticmethod
    def _remember(cache: dict[tuple[str, ...], Any], key: tuple[str, ...], value: Any) -> None:
        if key not in cache and len(cache) >= MAX_SCOPES:
            cache.clear()  # many distinct scopes: start over rather than grow
        cache[key] = value

    def _cached_yesterday(
        self, conn: psycopg.Connection[Any], now: datetime, wards: tuple[str, ...]
    ) -> pd.DataFrame:
        # Yesterday's frame changes when the hour moves (or late data arrives): recompute at
        # most once a minute and whenever the hour changes.
        hour = floor_hour(now)
        cached = self._yesterday.get(wards)
        if cached is not None and cached[0] == hour and (now - cached[1]).total_seconds() < 60:
            return cached[2]
        frame = all_kpis(conn, wards, now - DAY)
        self._remember(self._yesterday, wards, (hour, now, frame))
        return frame

    def _cached_air_quality(
        self, conn: psycopg.Connection[Any], now: datetime, wards: tuple[str, ...]
    ) -> pd.DataFrame:
        key = air_quality_fingerprint(conn, now)
        cached = self._air_quality.get(wards)
        if cached is not None and cached[0] == key:
            return cached[1]
        frame = air_quality_kpis(conn, wards, now)
        self._remember(self._air_quality, wards, (key, frame))
        return frame

    def _cached_travel(self, key: tuple[tuple[str, ...], datetime]) -> WallSnapshot | None:
        with self._lock:
            hit = self._travel.get(key)
            if hit is None or time.monotonic() - hit[0] > TRAVEL_TTL_S:
                return None
            self._travel.move_to_end(key)
            return hit[1]

    def _remember_travel(
        self, key: tuple[tuple[str, ...], datetime], snapshot: WallSnapshot
    ) -> None:
        with self._lock:
            self._travel[key] = (time.monotonic(), snapshot)
            while len(self._travel) > TRAVEL_CACHE:
                self._travel.popitem(last=False)

    def travel(
        self, as_of: datetime, wards: Sequence[str] | None = None
    ) -> WallSnapshot | Unavailable:
        """The wall's snapshot as it was at `as_of` (time travel) over `wards`."""
        scope = self._scope(wards)
        key = (scope, as_of)
        cached = self._cached_travel(key)
        if cached is not None:
            return cached
        result = self.read(lambda conn: travel_snapshot(conn, scope, as_of, self.config))
        if isinstance(result, WallSnapshot):
            self._remember_travel(key, result)
        return result

    def span(self) -> Span | Unavailable | None:
        """The stored history's span (the timeline's range)."""
        return self.read(data_span)

    def wall(
        self, now: datetime, wards: Sequence[str] | None = None, as_of: datetime | None = None
    ) -> WallSnapshot | Unavailable:
        """The wall's snapshot over `wards` (default: the whole pack), whose sum is "city";
        with `as_of`, as it was then (time travel) instead of now."""
        if as_of is not None:
            return self.travel(as_of, wards)
        scope = self._scope(wards)

        def query(conn: psycopg.Connection[Any]) -> WallSnapshot:
            return wall_snapshot(
                conn,
                scope,
                now,
                self.config,
                yesterday=self._cached_yesterday(conn, now, scope),
                air_quality=self._cached_air_quality(conn, now, scope),
            )

        return self.read(query)

    def ward(
        self,
        code: str,
        period: str,
        now: datetime,
        wards: Sequence[str] | None = None,
        as_of: datetime | None = None,
    ) -> WardDetail | Unavailable:
        """One ward's page, compared with the "city" of `wards` (default: the whole pack), now
        or as of `as_of`; a code outside `wards` or an unknown period is a ValueError, never a
        query."""
        scope = self._scope(wards)
        if code not in scope or period not in PERIOD_HOURS:
            raise ValueError("ward outside the scope or unknown period")

        def query(conn: psycopg.Connection[Any]) -> WardDetail:
            if as_of is not None:
                return ward_detail(conn, scope, code, period, as_of, live=False)
            aq = self._cached_air_quality(conn, now, scope)
            return ward_detail(conn, scope, code, period, now, aq)

        return self.read(query)

    def close(self) -> None:
        self.pool.close()
