"""Contract step of the air-quality feed (ioc.air_quality.v1): one station reading."""

from __future__ import annotations

from typing import Final

from ioc.core.contracts.base import EventBase, Rejected, WardIndex, check_id, check_ward
from ioc.core.feeds import AIR_QUALITY

POLLUTANTS: Final[tuple[str, ...]] = ("pm25", "pm10", "no2", "o3", "so2", "co")
# Far beyond anything a real city station reports (µg/m³); a larger value is a sensor fault.
ABSURD_LIMITS: Final[dict[str, float]] = {
    "pm25": 1000.0,
    "pm10": 2000.0,
    "no2": 4000.0,
    "o3": 2000.0,
    "so2": 5000.0,
    "co": 200000.0,
}


class AirQualityEvent(EventBase, frozen=True, kw_only=True, tag=AIR_QUALITY.schema):
    """Mean concentrations (µg/m³) over the period ending at event_time; None = no value."""

    station_id: str
    ward_code: str
    period_minutes: int
    pm25: float | None = None
    pm10: float | None = None
    no2: float | None = None
    o3: float | None = None
    so2: float | None = None
    co: float | None = None


def check_air_quality(ev: AirQualityEvent, wards: WardIndex) -> None:
    """Value rules a single reading must satisfy; raises Rejected."""
    check_id("station_id", ev.station_id)
    if not 1 <= ev.period_minutes <= 60:
        raise Rejected("bad_value", f"period_minutes {ev.period_minutes} is outside 1..60")
    for name, value in (
        ("pm25", ev.pm25),
        ("pm10", ev.pm10),
        ("no2", ev.no2),
        ("o3", ev.o3),
        ("so2", ev.so2),
        ("co", ev.co),
    ):
        if value is None:
            continue
        if value < 0:
            raise Rejected("negative_value", f"{name} {value} is negative")
        # `not <=` also catches NaN and infinities.
        if not value <= ABSURD_LIMITS[name]:
            raise Rejected("absurd_value", f"{name} {value} exceeds {ABSURD_LIMITS[name]:g}")
    check_ward(ev.ward_code, wards)
