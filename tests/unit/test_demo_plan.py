"""Demo plan: which stream time is emitted, in which order, and what a second start does."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from ioc.app.demo.plan import (
    DAY,
    FIRST_S,
    DemoState,
    Pass,
    StateError,
    Stream,
    load_state,
    make_plan,
    merge,
    save_state,
    subtract,
)

NOW = 1_795_276_655  # 2026-11-21 (a Saturday afternoon in UTC+7)
DB = "embedded:/data"


def covered(intervals: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> set[int]:
    return {t for a, b in intervals for t in range(a, b)}


def test_merge_and_subtract_agree_with_sets_of_seconds() -> None:
    rng = random.Random(7)
    for _ in range(300):
        parts = []
        for _ in range(rng.randint(0, 6)):
            a = rng.randint(0, 80)
            parts.append((a, a + rng.randint(-3, 25)))
        merged = merge(parts)
        assert covered(merged) == covered([p for p in parts if p[1] > p[0]])
        assert all(b1 < a2 for (_, b1), (a2, _) in itertools.pairwise(merged))
        span = (rng.randint(0, 40), rng.randint(40, 100))
        left = subtract(span, parts)
        assert covered(left) == covered([span]) - covered(parts)


def test_fresh_database_gets_the_last_hours_then_the_day_then_older_days() -> None:
    plan = make_plan(now=NOW, days=7, state=None, database=DB, latest_in_db=None)
    start = NOW - 7 * DAY
    first = NOW - FIRST_S
    assert plan.stream == Stream(start - start % 60, 1, 1.0)
    assert plan.passes == (
        Pass(((first, NOW),), live_from=NOW),
        Pass(((NOW - DAY, first),)),
        Pass(((start, NOW - DAY),)),
    )
    assert plan.backfill_seconds == 7 * DAY
    assert plan.done == ()


def test_second_start_minutes_later_only_catches_up() -> None:
    stream = Stream(NOW - 7 * DAY - 30, 1, 1.0)
    stopped = NOW - 120
    state = DemoState(DB, stream, ((NOW - 7 * DAY, stopped),))
    plan = make_plan(now=NOW, days=7, state=state, database=DB, latest_in_db=stopped - 3)
    assert plan.stream == stream
    assert plan.passes == (Pass(((stopped, NOW),), live_from=NOW),)
    assert plan.backfill_seconds == 120


def test_a_start_after_three_days_off_loads_the_gap_recent_day_first() -> None:
    stream = Stream(NOW - 10 * DAY, 1, 1.0)
    stopped = NOW - 3 * DAY
    state = DemoState(DB, stream, ((NOW - 10 * DAY, stopped),))
    plan = make_plan(now=NOW, days=7, state=state, database=DB, latest_in_db=stopped)
    assert plan.passes == (
        Pass(((NOW - FIRST_S, NOW),), live_from=NOW),
        Pass(((NOW - DAY, NOW - FIRST_S),)),
        Pass(((stopped, NOW - DAY),)),
    )


def test_an_interrupted_backfill_is_completed_without_redoing_what_is_stored() -> None:
    first_now = NOW - 600
    stream = Stream(first_now - 7 * DAY, 1, 1.0)
    # The first run stored its recent day, then was stopped early in the older days.
    done = ((first_now - DAY, first_now), (stream.start, stream.start + 3600))
    state = DemoState(DB, stream, done)
    plan = make_plan(now=NOW, days=7, state=state, database=DB, latest_in_db=first_now)
    emitted = covered(plan.backfill)
    wanted = covered([(NOW - 7 * DAY, NOW)]) - covered(done)
    assert emitted == wanted
    assert plan.passes[0].live_from == NOW
    assert all(p.live_from is None for p in plan.passes[1:])
    # Each pass emits in time order, and no second is emitted twice.
    for p in plan.passes:
        assert list(p.segments) == sorted(p.segments)
    assert sum(b - a for a, b in plan.backfill) == len(emitted)


def test_state_of_another_database_is_ignored_and_existing_data_is_kept() -> None:
    state = DemoState("embedded:/elsewhere", Stream(NOW - 7 * DAY), ((NOW - 7 * DAY, NOW - 60),))
    latest = NOW - 2 * DAY
    plan = make_plan(now=NOW, days=7, state=state, database=DB, latest_in_db=latest)
    assert latest < plan.stream.start <= latest + 60
    assert plan.stream.start % 60 == 0
    assert covered(plan.backfill) == covered([(plan.stream.start, NOW)])


def test_an_emptied_database_starts_afresh_even_with_a_state_file() -> None:
    state = DemoState(DB, Stream(NOW - 7 * DAY), ((NOW - 7 * DAY, NOW - 60),))
    plan = make_plan(now=NOW, days=7, state=state, database=DB, latest_in_db=None)
    assert plan.backfill_seconds == 7 * DAY
    assert plan.reason.startswith("new database")


def test_a_different_volume_scale_or_an_old_stream_means_a_new_stream() -> None:
    old = DemoState(DB, Stream(NOW - 7 * DAY, 1, 1.0), ((NOW - 7 * DAY, NOW - 60),))
    scaled = make_plan(
        now=NOW, days=7, state=old, database=DB, latest_in_db=NOW - 60, volume_scale=0.5
    )
    assert scaled.stream.volume_scale == 0.5
    assert scaled.stream.start >= NOW - 60 - 60
    ancient = DemoState(DB, Stream(NOW - 60 * DAY), ((NOW - 60 * DAY, NOW - 60),))
    fresh = make_plan(now=NOW, days=7, state=ancient, database=DB, latest_in_db=NOW - 60)
    assert fresh.stream.start > NOW - DAY


def test_state_round_trips_and_bad_files_say_so(tmp_path: Path) -> None:
    state = DemoState(DB, Stream(123_000, 5, 0.25), ((10, 20), (15, 30), (40, 50)))
    save_state(tmp_path, state)
    loaded = load_state(tmp_path)
    assert loaded == DemoState(DB, Stream(123_000, 5, 0.25), ((10, 30), (40, 50)))
    (tmp_path / "demo.json").write_text(json.dumps({"version": 1, "stream": 3}))
    with pytest.raises(StateError, match="not a demo state file"):
        load_state(tmp_path)
    (tmp_path / "demo.json").write_text("{")
    with pytest.raises(StateError, match="unreadable"):
        load_state(tmp_path)
    assert load_state(tmp_path / "missing") is None
