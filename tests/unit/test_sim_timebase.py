"""Simulated time: office hours, working-day arithmetic, durations, speeds and the clock."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest

from ioc.core.contracts import VN_TZ
from ioc.core.pacing import PacingClock, parse_speed
from simulators.core import Picker, poisson
from simulators.timebase import (
    WORK_SECONDS,
    WorkCalendar,
    day_number,
    local_day,
    parse_duration,
    second_of_day,
    to_datetime,
    weekday_of_day,
)


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=VN_TZ).timestamp())  # type: ignore[misc]


CAL = WorkCalendar.from_ranges([("2025-04-30", "2025-05-02")])


def test_local_day_and_weekday_match_the_calendar() -> None:
    for d in (date(2025, 3, 3), date(2025, 3, 9), date(2026, 2, 17), date(1999, 12, 31)):
        t = int(datetime(d.year, d.month, d.day, 23, 59, tzinfo=VN_TZ).timestamp())
        assert local_day(t) == day_number(d)
        assert weekday_of_day(local_day(t)) == d.weekday()
        assert second_of_day(t) == 23 * 3600 + 59 * 60
    assert to_datetime(_ts(2025, 3, 3, 8)).isoformat() == "2025-03-03T08:00:00+07:00"


def test_working_time_skips_lunch_nights_weekends_and_holidays() -> None:
    monday_0730 = _ts(2025, 3, 3, 7, 30)
    assert CAL.to_work(_ts(2025, 3, 3, 11, 30)) - CAL.to_work(monday_0730) == 4 * 3600
    assert CAL.to_work(_ts(2025, 3, 3, 13, 30)) == CAL.to_work(_ts(2025, 3, 3, 12, 15))
    assert CAL.to_work(_ts(2025, 3, 3, 17)) - CAL.to_work(monday_0730) == WORK_SECONDS
    # Friday 17:00 and Monday 07:30 are the same moment of working time.
    assert CAL.to_work(_ts(2025, 3, 7, 17)) == CAL.to_work(_ts(2025, 3, 10, 7, 30))
    assert CAL.to_work(_ts(2025, 3, 8, 10)) == CAL.to_work(_ts(2025, 3, 10, 7, 30))
    # 30 April - 2 May 2025 closed: Tuesday 29 April 17:00 == Monday 5 May 07:30.
    assert CAL.to_work(_ts(2025, 4, 29, 17)) == CAL.to_work(_ts(2025, 5, 5, 7, 30))


def test_from_work_inverts_to_work_inside_office_hours() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        w = rng.randrange(CAL.to_work(_ts(2025, 1, 1)), CAL.to_work(_ts(2025, 12, 31)))
        t = CAL.from_work(w)
        assert CAL.to_work(t) == w
        local = to_datetime(t)
        assert CAL.is_workday(local_day(t))
        h = local.hour + local.minute / 60
        assert 7.5 <= h < 11.5 or 13.5 <= h < 17


def test_due_dates_count_working_days() -> None:
    # Received Friday morning, 1 working day -> due Monday 17:00.
    assert CAL.due_after(_ts(2025, 3, 7, 9), 1) == _ts(2025, 3, 10, 17)
    # Received on Saturday, 1 working day -> Monday 17:00 (counting starts on Monday).
    assert CAL.due_after(_ts(2025, 3, 8, 9), 1) == _ts(2025, 3, 10, 17)
    # Over the May holidays: received Tue 29 April, 2 working days -> Tue 6 May.
    assert CAL.due_after(_ts(2025, 4, 29, 9), 2) == _ts(2025, 5, 6, 17)
    assert CAL.due_after(_ts(2025, 3, 3, 9), 15) == _ts(2025, 3, 24, 17)


def test_nth_workday_agrees_with_a_day_by_day_count() -> None:
    start = day_number(date(2025, 4, 1))
    day, n = start, CAL.ordinal(start)
    for _ in range(60):
        if CAL.is_workday(day):
            assert CAL.nth_workday(n) == day
            n += 1
        day += 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * 86400),
        ("12h", 43200),
        ("30m", 1800),
        ("1d12h", 129600),
        ("90", 90),
        ("2w", 14 * 86400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7x", "d", "12h30", "-1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_speeds() -> None:
    assert parse_speed("max") is None
    assert parse_speed("60") == 60.0
    assert parse_speed("x10") == 10.0
    for bad in ("0", "-3", "fast-ish", "nan", "1e999"):
        with pytest.raises(ValueError, match="speed"):
            parse_speed(bad)


def test_clock_modes() -> None:
    wall = [100.0]

    def sleep(s: float) -> None:
        wall[0] += s

    real = PacingClock(1_000, 1.0, monotonic=lambda: wall[0], sleep=sleep)
    assert real.wait_until(1_010)
    assert real.now() == pytest.approx(1_010, abs=0.3)
    fast = PacingClock(1_000, 60.0, monotonic=lambda: wall[0], sleep=sleep)
    before = wall[0]
    assert fast.wait_until(1_000 + 3600)
    assert wall[0] - before == pytest.approx(60.0, abs=0.3)
    flat_out = PacingClock(1_000, None, monotonic=lambda: wall[0], sleep=sleep)
    before = wall[0]
    assert flat_out.wait_until(10**9)
    assert wall[0] == before and flat_out.now() == 10**9
    with pytest.raises(ValueError, match="speed"):
        PacingClock(0, 0.0)


def test_poisson_mean_and_variance() -> None:
    rng = random.Random(1)
    for lam in (0.3, 4.0, 80.0):
        draws = [poisson(rng, lam) for _ in range(20_000)]
        mean = sum(draws) / len(draws)
        var = sum((d - mean) ** 2 for d in draws) / len(draws)
        assert mean == pytest.approx(lam, rel=0.05)
        assert var == pytest.approx(lam, rel=0.08)
    assert poisson(rng, 0.0) == 0


def test_picker_follows_weights() -> None:
    rng = random.Random(2)
    picker = Picker(["a", "b", "c"], [1.0, 3.0, 0.0])
    counts = {"a": 0, "b": 0, "c": 0}
    for _ in range(40_000):
        counts[picker.pick(rng)] += 1
    assert counts["c"] == 0
    assert counts["b"] / counts["a"] == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="zero"):
        Picker(["a"], [0.0])
