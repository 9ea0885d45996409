"""Case rules: judged on the set of a case's events, so arrival order never changes the outcome."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest

from ioc.core.contracts import DOSSIER_LIFECYCLE, FEEDBACK_LIFECYCLE, CaseEvent, CaseHistory
from streams.ingest.writers import dossiers

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone(timedelta(hours=7)))
DOSSIER_PATH = (
    "received",
    "supplement_requested",
    "supplement_received",
    "processing",
    "resolved",
    "returned",
)


def dossier_rows(kinds: tuple[str, ...]) -> list[tuple[object, ...]]:
    due = T0 + timedelta(days=3)
    return [
        (f"e{i}", T0 + timedelta(hours=i), "06649", "D1", kind, "land", "online",
         "full_online", T0, due, True, kind in ("resolved", "returned"), 0)
        for i, kind in enumerate(kinds)
    ]  # fmt: skip


def as_case_event(row: tuple[object, ...]) -> CaseEvent:
    e_id, time, ward, _, kind, *_ = row
    assert isinstance(time, datetime)
    return CaseEvent(str(e_id), str(kind), time, T0, str(ward))


def accept_all(rows: list[tuple[object, ...]]) -> list[str | None]:
    hist = CaseHistory()
    verdicts = []
    for row in rows:
        ev = as_case_event(row)
        why = hist.check(DOSSIER_LIFECYCLE, ev)
        verdicts.append(why)
        if why is None:
            hist.add(ev)
    return verdicts


def test_every_arrival_order_of_a_valid_dossier_is_accepted_with_one_final_state() -> None:
    rows = dossier_rows(DOSSIER_PATH)
    in_order = dossiers.case_row(rows)
    assert in_order[9] == "returned"  # status
    assert in_order[12] == "on_time" or in_order[12] == "early"
    seen = 0
    for perm in itertools.permutations(rows):
        assert accept_all(list(perm)) == [None] * len(rows)
        assert dossiers.case_row(list(perm)) == in_order
        seen += 1
    assert seen == 720


@pytest.mark.parametrize(
    ("kinds", "bad_index"),
    [
        (("received", "resolved", "processing"), 2),
        (("received", "resolved", "rejected"), 2),
        (("received", "withdrawn", "returned"), 2),
        (("received", "resolved", "resolved"), 2),
        (("received", "received"), 1),
    ],
)
def test_impossible_sequences_are_caught_in_any_order(
    kinds: tuple[str, ...], bad_index: int
) -> None:
    rows = dossier_rows(kinds)
    assert accept_all(rows)[bad_index] is not None
    # Whatever the order, the history never accepts all of them.
    for perm in itertools.permutations(rows):
        assert any(v is not None for v in accept_all(list(perm)))


def test_event_before_the_case_began_is_impossible() -> None:
    hist = CaseHistory()
    early = CaseEvent("x", "processing", T0 - timedelta(minutes=1), T0, "06649")
    assert hist.check(DOSSIER_LIFECYCLE, early) is not None


def test_disagreeing_start_or_ward_is_impossible() -> None:
    hist = CaseHistory()
    hist.add(CaseEvent("a", "received", T0, T0, "06649"))
    other_start = CaseEvent(
        "b", "processing", T0 + timedelta(hours=1), T0 + timedelta(hours=1), "06649"
    )
    other_ward = CaseEvent("c", "processing", T0 + timedelta(hours=1), T0, "06652")
    assert hist.check(DOSSIER_LIFECYCLE, other_start) is not None
    assert hist.check(DOSSIER_LIFECYCLE, other_ward) is not None


def test_feedback_rating_follows_its_closing() -> None:
    rng = random.Random(7)
    good = [
        CaseEvent("s", "submitted", T0, T0, "06649"),
        CaseEvent("a", "assigned", T0 + timedelta(hours=1), T0, "06649"),
        CaseEvent("r", "resolved", T0 + timedelta(hours=5), T0, "06649"),
        CaseEvent("q", "rated", T0 + timedelta(hours=9), T0, "06649"),
    ]
    for _ in range(30):
        order = good[:]
        rng.shuffle(order)
        hist = CaseHistory()
        for ev in order:
            assert hist.check(FEEDBACK_LIFECYCLE, ev) is None
            hist.add(ev)
    hist = CaseHistory()
    for ev in good[:3]:
        hist.add(ev)
    too_early = CaseEvent("q2", "rated", T0 + timedelta(hours=2), T0, "06649")
    assert hist.check(FEEDBACK_LIFECYCLE, too_early) is not None
