"""Unit tests of the table-step helpers that need no database: statement shapes."""

from __future__ import annotations

import pytest

from streams.ingest.storage import SKIP_KNOWN_EVENTS, _insert_new_query, plain_insert
from streams.ingest.writers import air_quality, payments


def test_first_tries_differ_from_their_fallbacks_only_by_the_conflict_clause() -> None:
    for module in (payments, air_quality):
        safe, first = module.INSERT_AND_ROLL_UP, module.INSERT_AND_ROLL_UP_FIRST_TRY
        assert SKIP_KNOWN_EVENTS in safe and SKIP_KNOWN_EVENTS not in first
        # Other tables' ON CONFLICT clauses (rollups, merchant days) stay in the first try.
        assert first.count("ON CONFLICT") == safe.count("ON CONFLICT") - 1


def test_plain_insert_refuses_a_statement_without_exactly_one_clause() -> None:
    with pytest.raises(ValueError, match="exactly once"):
        plain_insert("INSERT INTO t SELECT * FROM s")
    with pytest.raises(ValueError, match="exactly once"):
        plain_insert(f"{SKIP_KNOWN_EVENTS} {SKIP_KNOWN_EVENTS}")


def test_case_event_inserts_skip_known_events_only_on_the_fallback() -> None:
    cols = ("event_id", "event_time")
    assert SKIP_KNOWN_EVENTS.encode() in _insert_new_query("dossier_events", cols, True)
    assert b"ON CONFLICT" not in _insert_new_query("dossier_events", cols, False)
