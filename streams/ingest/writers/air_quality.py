"""Consumer step of the air-quality feed: ioc.air_quality.v1 into readings and hourly means."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import psycopg

from ioc.core.contracts import AirQualityEvent
from ioc.core.feeds import AIR_QUALITY, Feed
from streams.ingest.storage import insert_expecting_new, plain_insert, stage_rows
from streams.ingest.writers.base import Accepted, WriteResult

EVENT_COLUMNS: Final = (
    "event_id",
    "event_time",
    "ward_code",
    "station_id",
    "period_minutes",
    "pm25",
    "pm10",
    "no2",
    "o3",
    "so2",
    "co",
)

# A reading is the mean over the period ending at event_time, so it belongs to the hour in which
# that period started. Missing values (NULL) add nothing to a pollutant's sum or count.
INSERT_AND_ROLL_UP: Final = """
WITH ins AS (
    INSERT INTO air_quality_readings (event_id, event_time, ward_code, station_id,
                                      period_minutes, pm25, pm10, no2, o3, so2, co)
    SELECT event_id, event_time, ward_code, station_id, period_minutes,
           pm25, pm10, no2, o3, so2, co
    FROM stage_air_quality_readings
    ON CONFLICT (event_id, event_time) DO NOTHING
    RETURNING *
), hourly AS (
    INSERT INTO air_quality_station_hourly AS h (station_id, ward_code, bucket, readings,
        pm25_sum, pm25_n, pm10_sum, pm10_n, no2_sum, no2_n, o3_sum, o3_n, so2_sum, so2_n,
        co_sum, co_n)
    SELECT station_id, max(ward_code),
           date_trunc('hour', event_time - make_interval(mins => period_minutes)),
           count(*),
           coalesce(sum(pm25), 0), count(pm25), coalesce(sum(pm10), 0), count(pm10),
           coalesce(sum(no2), 0), count(no2), coalesce(sum(o3), 0), count(o3),
           coalesce(sum(so2), 0), count(so2), coalesce(sum(co), 0), count(co)
    FROM ins GROUP BY station_id, 3
    ORDER BY station_id, 3
    ON CONFLICT (station_id, bucket) DO UPDATE SET
        ward_code = EXCLUDED.ward_code,
        readings = h.readings + EXCLUDED.readings,
        pm25_sum = h.pm25_sum + EXCLUDED.pm25_sum, pm25_n = h.pm25_n + EXCLUDED.pm25_n,
        pm10_sum = h.pm10_sum + EXCLUDED.pm10_sum, pm10_n = h.pm10_n + EXCLUDED.pm10_n,
        no2_sum = h.no2_sum + EXCLUDED.no2_sum, no2_n = h.no2_n + EXCLUDED.no2_n,
        o3_sum = h.o3_sum + EXCLUDED.o3_sum, o3_n = h.o3_n + EXCLUDED.o3_n,
        so2_sum = h.so2_sum + EXCLUDED.so2_sum, so2_n = h.so2_n + EXCLUDED.so2_n,
        co_sum = h.co_sum + EXCLUDED.co_sum, co_n = h.co_n + EXCLUDED.co_n
    RETURNING 1
)
SELECT count(*), max(event_time) FROM ins
"""
INSERT_AND_ROLL_UP_FIRST_TRY: Final = plain_insert(INSERT_AND_ROLL_UP)


def _row(ev: AirQualityEvent) -> tuple[object, ...]:
    return (
        ev.event_id,
        ev.event_time,
        ev.ward_code,
        ev.station_id,
        ev.period_minutes,
        ev.pm25,
        ev.pm10,
        ev.no2,
        ev.o3,
        ev.so2,
        ev.co,
    )


class AirQualityWriter:
    """FeedWriter for ioc.air_quality.v1."""

    @property
    def feed(self) -> Feed:
        return AIR_QUALITY

    @property
    def staging(self) -> tuple[str, ...]:
        return ("air_quality_readings",)

    def write(self, conn: psycopg.Connection[Any], batch: Sequence[Accepted]) -> WriteResult:
        rows = [_row(a.event) for a in batch if isinstance(a.event, AirQualityEvent)]
        if not rows:
            return WriteResult()
        stage_rows(conn, "air_quality_readings", EVENT_COLUMNS, rows)
        [found] = insert_expecting_new(conn, INSERT_AND_ROLL_UP_FIRST_TRY, INSERT_AND_ROLL_UP)
        inserted = int(found[0])
        return WriteResult(
            inserted=inserted,
            duplicates=len(rows) - inserted,
            last_event_time=found[1],
        )


WRITER: Final = AirQualityWriter()
