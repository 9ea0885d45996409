"""Simulator step of the data path: simulated time as integer epoch seconds, and office hours.

Vietnam has kept UTC+7 without daylight saving since 1975, so local time is epoch + 7 h and
day arithmetic needs no time-zone database.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import lru_cache

from ioc.core.contracts import VN_TZ

OFFSET = 7 * 3600
DAY = 86_400
# Office hours of one-stop counters: 07:30-11:30 and 13:30-17:00 (seconds of the local day).
MORNING = (7 * 3600 + 1800, 11 * 3600 + 1800)
AFTERNOON = (13 * 3600 + 1800, 17 * 3600)
WORK_SECONDS = (MORNING[1] - MORNING[0]) + (AFTERNOON[1] - AFTERNOON[0])  # 27,000 s = 7.5 h
_MORNING_LEN = MORNING[1] - MORNING[0]
_EPOCH_DAY = date(1970, 1, 1)
# 1970-01-01 was a Thursday (weekday 3).
_EPOCH_WEEKDAY = 3


def local_day(t: int) -> int:
    """Local calendar day number (days since 1970-01-01 in Vietnam time)."""
    return (t + OFFSET) // DAY


def second_of_day(t: int) -> int:
    """Seconds since local midnight."""
    return (t + OFFSET) % DAY


def weekday_of_day(day: int) -> int:
    """Monday = 0 ... Sunday = 6."""
    return (day + _EPOCH_WEEKDAY) % 7


def day_start(day: int) -> int:
    """Epoch seconds of local midnight of a day number."""
    return day * DAY - OFFSET


def day_number(d: date) -> int:
    """Day number of a calendar date."""
    return (d - _EPOCH_DAY).days


def to_datetime(t: int) -> datetime:
    """An aware datetime in +07:00."""
    return datetime.fromtimestamp(t, VN_TZ)


def from_datetime(dt: datetime) -> int:
    """Epoch seconds of an aware datetime (fractions dropped)."""
    if dt.tzinfo is None:
        raise ValueError("a timezone-aware datetime is needed")
    return int(dt.timestamp())


@lru_cache(maxsize=4096)
def _weekdays_before(day: int) -> int:
    """Monday-Friday days in [0, day)."""
    weeks, rem = divmod(day, 7)
    return weeks * 5 + sum(1 for i in range(rem) if (i + _EPOCH_WEEKDAY) % 7 < 5)


class WorkCalendar:
    """Working days (Mon-Fri, not holidays) and a 'working time' axis that skips closed hours.

    A working-time value w counts office seconds: each working day contributes WORK_SECONDS.
    Scheduling in working time keeps life-cycle steps inside office hours and makes "N working
    days" a plain addition.
    """

    def __init__(self, closed_days: Iterable[int]) -> None:
        self._all_closed = frozenset(closed_days)
        # Only closed weekdays change the count of working days.
        self._closed = sorted(d for d in self._all_closed if weekday_of_day(d) < 5)
        self._closed_set = frozenset(self._closed)
        self._nth: dict[int, int] = {}

    @classmethod
    def from_ranges(cls, ranges: Iterable[tuple[str, str]]) -> WorkCalendar:
        """From inclusive ISO date ranges of closed days."""
        days: list[int] = []
        for first, last in ranges:
            a = day_number(date.fromisoformat(first))
            b = day_number(date.fromisoformat(last))
            days.extend(range(a, b + 1))
        return cls(days)

    def with_closed(self, days: Iterable[int]) -> WorkCalendar:
        """A calendar with more closed days."""
        return WorkCalendar([*self._all_closed, *days])

    def is_holiday(self, day: int) -> bool:
        """A day (of any weekday) inside a closure: no Saturday-morning service either."""
        return day in self._all_closed

    def is_workday(self, day: int) -> bool:
        """Offices open (Mon-Fri and not a holiday)."""
        return weekday_of_day(day) < 5 and day not in self._closed_set

    def ordinal(self, day: int) -> int:
        """Working days in [0, day)."""
        return _weekdays_before(day) - bisect_left(self._closed, day)

    def nth_workday(self, n: int) -> int:
        """The day number of the working day with ordinal n."""
        cached = self._nth.get(n)
        if cached is not None:
            return cached
        lo, hi = n, n * 2 + 14 + 2 * len(self._closed)
        # Smallest day whose following day has ordinal > n.
        while lo < hi:
            mid = (lo + hi) // 2
            if self.ordinal(mid + 1) > n:
                hi = mid
            else:
                lo = mid + 1
        self._nth[n] = lo
        return lo

    def to_work(self, t: int) -> int:
        """Working seconds before epoch time t."""
        day = local_day(t)
        base = self.ordinal(day) * WORK_SECONDS
        if not self.is_workday(day):
            return base
        s = second_of_day(t)
        if s <= MORNING[0]:
            off = 0
        elif s <= MORNING[1]:
            off = s - MORNING[0]
        elif s <= AFTERNOON[0]:
            off = _MORNING_LEN
        elif s <= AFTERNOON[1]:
            off = _MORNING_LEN + s - AFTERNOON[0]
        else:
            off = WORK_SECONDS
        return base + off

    def from_work(self, w: int) -> int:
        """Epoch time at working-time w (an office moment on a working day)."""
        n, off = divmod(w, WORK_SECONDS)
        start = day_start(self.nth_workday(n))
        if off < _MORNING_LEN:
            return start + MORNING[0] + off
        return start + AFTERNOON[0] + off - _MORNING_LEN

    def add_working_days(self, t: int, days: float) -> int:
        """t moved forward by `days` working days of office time."""
        return self.from_work(self.to_work(t) + int(days * WORK_SECONDS))

    def due_after(self, t: int, days: int) -> int:
        """Statutory due moment: end of office hours on the `days`-th working day after t."""
        n = self.ordinal(local_day(t)) + days
        if not self.is_workday(local_day(t)):
            n -= 1  # received on a closed day: counting starts with the next working day
        return day_start(self.nth_workday(n)) + AFTERNOON[1]


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '30m', '90s', '1d12h' or a plain number of seconds; ValueError otherwise."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty duration")
    if raw.isdigit():
        return timedelta(seconds=int(raw))
    units = {"w": 7 * DAY, "d": DAY, "h": 3600, "m": 60, "s": 1}
    total = 0
    number = ""
    for ch in raw:
        if ch.isdigit():
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"bad duration {text!r}; use e.g. 7d, 12h, 30m, 1d12h")
    if number:
        raise ValueError(f"bad duration {text!r}: {number!r} has no unit (w, d, h, m, s)")
    return timedelta(seconds=total)
