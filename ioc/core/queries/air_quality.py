"""Query step of the air-quality feed: current VN_AQI per ward (worst station) and today's hours."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import pandas as pd
import psycopg

from ioc.core.aqi import NOWCAST_HOURS, category, hourly_aqi, nowcast
from ioc.core.queries.window import CITY, HOUR, Window, floor_hour

KPIS: Final = ("aqi", "aqi_category", "pm25", "hours_over_100_today")
# In the order STATION_HOURS selects them.
POLLUTANTS: Final = ("pm25", "pm10", "no2", "o3", "so2", "co")
AQI_ALERT_LEVEL: Final = 100

# The station-hour means from NowCast's reach before local midnight up to now's hour.
STATION_HOURS: Final = """
SELECT station_id, ward_code, bucket,
       pm25_sum / nullif(pm25_n, 0), pm10_sum / nullif(pm10_n, 0), no2_sum / nullif(no2_n, 0),
       o3_sum / nullif(o3_n, 0), so2_sum / nullif(so2_n, 0), co_sum / nullif(co_n, 0)
FROM air_quality_station_hourly
WHERE bucket >= %(start)s AND bucket <= %(hour)s
"""


def station_hour_aqi(
    means: dict[datetime, dict[str, float | None]], hour: datetime
) -> tuple[int | None, float | None]:
    """(AQI, NowCast PM2.5) of a station for `hour` from its hourly means (missing = absent)."""
    hours = [hour - i * HOUR for i in range(NOWCAST_HOURS)]
    series = {p: [means.get(h, {}).get(p) for h in hours] for p in POLLUTANTS}
    return hourly_aqi(series).aqi, nowcast(series["pm25"])


def compute(rows: Sequence[Sequence[Any]], wards: Sequence[str], now: datetime) -> pd.DataFrame:
    """AQ KPIs from station-hour means. The one definition of each air-quality KPI.

    aqi: the worst station's hourly VN_AQI in the ward at now's hour; pm25: that ward's highest
    station NowCast PM2.5 (µg/m³); hours_over_100_today: hours since local midnight in which
    some station of the ward had an AQI over 100. The city takes the worst of all stations of
    `wards` (a scoped caller's "city" is the wards it may see; stations elsewhere are ignored).
    """
    today = Window.today(now)
    hour = floor_hour(now)
    by_station: dict[str, dict[datetime, dict[str, float | None]]] = defaultdict(dict)
    ward_of: dict[str, str] = {}
    wanted = set(wards)
    for station, ward, bucket, *values in rows:
        if ward not in wanted:
            continue
        by_station[station][bucket] = dict(zip(POLLUTANTS, values, strict=True))
        ward_of[station] = ward
    today_hours = []
    h = today.start
    while h <= hour:
        today_hours.append(h)
        h += HOUR
    aqi: dict[str, int] = {}
    pm25: dict[str, float] = {}
    over: dict[str, set[datetime]] = defaultdict(set)
    for station, means in by_station.items():
        ward = ward_of[station]
        for h in today_hours:
            value, pm = station_hour_aqi(means, h)
            if value is not None and value > AQI_ALERT_LEVEL:
                over[ward].add(h)
                over[CITY].add(h)
            if h == hour:
                for key in (ward, CITY):
                    if value is not None and value > aqi.get(key, -1):
                        aqi[key] = value
                    if pm is not None and pm > pm25.get(key, -1.0):
                        pm25[key] = pm
    index = [*wards, CITY]
    has_station = set(ward_of.values()) | ({CITY} if ward_of else set())
    out = pd.DataFrame(index=pd.Index(index, name="ward_code"))
    out["aqi"] = pd.Series(aqi, dtype=float).reindex(index)
    out["aqi_category"] = [
        category(v).name_vi if pd.notna(v) else None for v in out["aqi"].tolist()
    ]
    out["pm25"] = pd.Series(pm25, dtype=float).reindex(index)
    out["hours_over_100_today"] = [
        float(len(over.get(w, ()))) if w in has_station else float("nan") for w in index
    ]
    return out


def air_quality_kpis(
    conn: psycopg.Connection[Any], wards: Sequence[str], now: datetime
) -> pd.DataFrame:
    """Air-quality KPIs per ward and for the city at `now` (wards without stations: NaN)."""
    hour = floor_hour(now)
    start = Window.today(now).start - (NOWCAST_HOURS - 1) * HOUR
    rows = conn.execute(STATION_HOURS, {"start": start, "hour": hour}).fetchall()
    return compute(rows, wards, now)
