"""Consumer step shared by the case feeds: check each event against its case, store, recompute."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

import psycopg
from psycopg import sql

from ioc.core.contracts.transitions import CaseEvent, CaseHistory, Lifecycle
from ioc.core.feeds import Feed
from streams.ingest.storage import add_to_rollup, insert_new_from_stage, stage_rows, upsert_rows
from streams.ingest.writers.base import Accepted, WriteResult
from streams.transport.source import DeadLetter

E = TypeVar("E")
Row = Sequence[Any]
Increments = Mapping[tuple[object, ...], Mapping[str, float | int]]


@dataclass(frozen=True)
class CaseFeedSpec(Generic[E]):
    """How one case feed maps onto its tables; rows are in `event_columns` order."""

    feed: Feed
    event_type: type[E]
    events_table: str
    event_columns: tuple[str, ...]
    case_table: str
    case_id_column: str
    case_columns: tuple[str, ...]
    rollup_table: str
    lifecycle: Lifecycle
    kind_rank: Mapping[str, int]
    case_id: Callable[[E], str]
    row: Callable[[E], tuple[object, ...]]
    started_at_index: int
    case_row: Callable[[Sequence[Row]], tuple[object, ...]]
    increments: Callable[[Sequence[E]], Increments]

    def case_event(self, row: Row) -> CaseEvent:
        # event_id, event_time, ward_code, <case id>, kind lead every events table.
        return CaseEvent(row[0], row[4], row[1], row[self.started_at_index], row[2])


class CaseWriter(Generic[E]):
    """FeedWriter for a case feed: impossible events become dead letters, the rest are stored."""

    def __init__(self, spec: CaseFeedSpec[E]) -> None:
        self.spec = spec

    @property
    def feed(self) -> Feed:
        return self.spec.feed

    @property
    def staging(self) -> tuple[str, ...]:
        return (self.spec.events_table, self.spec.case_table)

    def _load(self, conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, list[Row]]:
        spec = self.spec
        query = _load_query(spec.events_table, spec.case_id_column, spec.event_columns)
        existing: dict[str, list[Row]] = defaultdict(list)
        for row in conn.execute(query, {"ids": ids}).fetchall():
            existing[row[3]].append(row)
        return existing

    def write(self, conn: psycopg.Connection[Any], batch: Sequence[Accepted]) -> WriteResult:
        spec = self.spec
        result = WriteResult()
        events = [(a, a.event) for a in batch if isinstance(a.event, spec.event_type)]
        if not events:
            return result
        ids = sorted({spec.case_id(ev) for _, ev in events})
        lock_cases(conn, spec.case_table, ids)
        existing = self._load(conn, ids)
        histories: dict[str, CaseHistory] = {}
        for case_id, rows in existing.items():
            hist = CaseHistory()
            for r in sorted(rows, key=lambda r: (r[1], spec.kind_rank[r[4]])):
                hist.add(spec.case_event(r))
            histories[case_id] = hist
        fresh: list[tuple[E, tuple[object, ...]]] = []
        for acc, ev in events:
            case_id = spec.case_id(ev)
            hist = histories.setdefault(case_id, CaseHistory())
            row = spec.row(ev)
            cev = spec.case_event(row)
            if cev.event_id in hist.events:
                result.duplicates += 1
                continue
            why = hist.check(spec.lifecycle, cev)
            if why is not None:
                result.dead.append(DeadLetter(acc.record, "impossible_transition", why))
                continue
            hist.add(cev)
            existing[case_id].append(row)
            fresh.append((ev, row))
        if not fresh:
            return result
        stage_rows(conn, spec.events_table, spec.event_columns, (row for _, row in fresh))
        new_ids = set(insert_new_from_stage(conn, spec.events_table, spec.event_columns))
        inserted = [(e, row) for e, row in fresh if row[0] in new_ids]
        result.inserted = len(inserted)
        result.duplicates += len(fresh) - len(inserted)
        add_to_rollup(
            conn,
            spec.rollup_table,
            ("ward_code", "bucket"),
            spec.increments([e for e, _ in inserted]),
        )
        touched = sorted({spec.case_id(e) for e, _ in inserted})
        upsert_rows(
            conn,
            spec.case_table,
            spec.case_id_column,
            spec.case_columns,
            (spec.case_row(existing[c]) for c in touched),
        )
        times = [row[1] for _, row in inserted]
        result.last_event_time = max(t for t in times if isinstance(t, datetime))
        return result


# Every case of the batch is locked, in key order, until the transaction ends: a member of the
# group that holds one of them (the case's partition just moved, with a batch in flight) is
# waited for, and the histories read after that include its events. Keyed messages keep a case on
# one partition, so otherwise nobody waits.
LOCK_CASES: Final = """
SELECT count(pg_advisory_xact_lock(hashtext(%(table)s), k))
FROM (SELECT DISTINCT hashtext(id) AS k FROM unnest(%(ids)s::text[]) AS id ORDER BY 1) AS s
"""


def lock_cases(conn: psycopg.Connection[Any], case_table: str, ids: Sequence[str]) -> None:
    """Hold these cases of `case_table` for the rest of the transaction."""
    conn.execute(LOCK_CASES, {"table": case_table, "ids": list(ids)})


@functools.cache
def _load_query(table: str, id_column: str, columns: tuple[str, ...]) -> bytes:
    """All events of the cases in %(ids)s (composed once: names come from the specs)."""
    return (
        sql.SQL("SELECT {cols} FROM {t} WHERE {idc} = ANY(%(ids)s)")
        .format(
            cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            t=sql.Identifier(table),
            idc=sql.Identifier(id_column),
        )
        .as_bytes(None)
    )
