"""Query step: the time window a KPI is computed over, and the shape of every KPI table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import pandas as pd

from ioc.core.contracts import VN_TZ

CITY: Final = "city"
HOUR: Final = timedelta(hours=1)


def floor_hour(t: datetime) -> datetime:
    """The start of t's hour (the same instant in UTC and UTC+7, whose offset is whole hours)."""
    return t.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Window:
    """Hours [start, end): rollup buckets whose start lies inside count. start == end is the
    empty window (time travel to a day's first hour has no completed hour of that day yet)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name, t in (("start", self.start), ("end", self.end)):
            if t.tzinfo is None:
                raise ValueError(f"window {name} must be timezone-aware")
            if t != floor_hour(t):
                raise ValueError(f"window {name} {t.isoformat()} is not on the hour")
        if self.end < self.start:
            raise ValueError("window end must not be before its start")

    @classmethod
    def last(cls, hours: int, now: datetime) -> Window:
        """The `hours` hours up to and including the one now is in."""
        end = floor_hour(now) + HOUR
        return cls(end - hours * HOUR, end)

    @classmethod
    def today(cls, now: datetime) -> Window:
        """From local (UTC+7) midnight to the end of the current hour."""
        local = now.astimezone(VN_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(midnight, floor_hour(now) + HOUR)

    @classmethod
    def today_before(cls, as_of: datetime) -> Window:
        """Time travel: the completed hours of as_of's local day, [local midnight, as_of's hour).
        Rollups are hourly, so an hour that had only begun at as_of cannot count yet."""
        local = as_of.astimezone(VN_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(midnight, floor_hour(as_of))

    @classmethod
    def last_before(cls, hours: int, as_of: datetime) -> Window:
        """Time travel: the `hours` completed hours before as_of's hour."""
        end = floor_hour(as_of)
        return cls(end - hours * HOUR, end)

    def shifted(self, delta: timedelta) -> Window:
        """The same window moved by delta (e.g. -1 day for 'same time yesterday')."""
        return Window(self.start + delta, self.end + delta)

    def local_days(self) -> list[date]:
        """The local calendar days the window touches."""
        first = self.start.astimezone(VN_TZ).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(VN_TZ).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num/den with NaN where den is 0 (a rate of nothing is unknown, not 0)."""
    return num.astype(float).div(den.where(den != 0).astype(float))


def with_city(parts: pd.DataFrame, wards: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Component sums per ward (every ward of the pack, zeros where none) plus the city's sum."""
    frame = parts.reindex(index=list(wards), columns=list(columns)).fillna(0)
    frame.loc[CITY] = frame.sum(axis=0)
    frame.index.name = "ward_code"
    return frame
