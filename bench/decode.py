"""Benchmark of the consumer step's decoding: events/s decoded and validated, all feeds mixed.

Run: python -m bench.decode (writes bench/results/decode.json).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ioc.core.contracts import (
    AirQualityEvent,
    DossierEvent,
    Event,
    FeedbackEvent,
    PaymentEvent,
    decode_event,
    encode_event,
)

NOW = datetime(2025, 3, 10, 9, 30, tzinfo=timezone(timedelta(hours=7)))
TARGET_PER_SECOND = 100_000
RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"


class Wards:
    codes = frozenset(f"{6649 + 3 * i:05d}" for i in range(33))

    def __contains__(self, code: str) -> bool:
        return code in self.codes

    def ward_at(self, lat: float, lon: float) -> str | None:
        return "06649"


def _mix(n: int) -> list[Event]:
    events: list[Event] = []
    for i in range(n):
        t = NOW - timedelta(seconds=i)
        code = f"{6649 + 3 * (i % 33):05d}"
        match i % 4:
            case 0:
                events.append(
                    PaymentEvent(event_id=f"p{i}", event_time=t, payment_id=f"P{i}",
                                 merchant_id=f"M{i % 97}", ward_code=code, merchant_type="shop",
                                 channel="vietqr", amount_vnd=10_000 + i, status="succeeded")
                )  # fmt: skip
            case 1:
                events.append(
                    DossierEvent(event_id=f"d{i}", event_time=t, dossier_id=f"D{i}",
                                 ward_code=code, kind="processing", procedure_field="land",
                                 channel="online", service_level="full_online",
                                 received_at=t - timedelta(days=1), due_at=t + timedelta(days=3),
                                 digitized=True, e_signed=False, fee_vnd=50_000)
                )  # fmt: skip
            case 2:
                events.append(
                    FeedbackEvent(event_id=f"f{i}", event_time=t, report_id=f"R{i}",
                                  kind="submitted", category="traffic", urgency="normal",
                                  channel="app", lat=20.95, lon=107.05, submitted_at=t,
                                  due_at=t + timedelta(days=3), ward_code=code)
                )  # fmt: skip
            case _:
                events.append(
                    AirQualityEvent(event_id=f"a{i}", event_time=t, station_id=f"S{i % 20}",
                                    ward_code=code, period_minutes=15, pm25=35.2, pm10=60.1,
                                    no2=20.3, o3=40.0, so2=4.1, co=800.0)
                )  # fmt: skip
    return events


def main() -> None:
    from bench.machine import describe

    wards = Wards()
    raws = [encode_event(ev) for ev in _mix(20_000)]
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for raw in raws:
            decode_event(raw, wards=wards, now=NOW)
        rates.append(len(raws) / (time.perf_counter() - start))
    result = {
        "benchmark": "decode",
        "machine": describe(),
        "events": len(raws),
        "mean_bytes": sum(map(len, raws)) / len(raws),
        "events_per_s_best": round(max(rates)),
        "events_per_s_median": round(sorted(rates)[len(rates) // 2]),
        "target_events_per_s": TARGET_PER_SECOND,
        "meets_target": max(rates) >= TARGET_PER_SECOND,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
