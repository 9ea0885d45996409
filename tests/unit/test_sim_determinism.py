"""Simulators: byte-identical output per seed, every event valid by contract, order and ids."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from ioc.core.citypack import CityPack, load_pack
from ioc.core.contracts import (
    LIFECYCLES,
    VN_TZ,
    AirQualityEvent,
    CaseEvent,
    CaseHistory,
    DossierEvent,
    FeedbackEvent,
    Rejected,
    decode_event,
)
from ioc.core.feeds import BY_TOPIC
from ioc.core.pacing import PacingClock
from simulators.core import Item
from simulators.engine import SimConfig, generate, run
from simulators.params import SimParams
from simulators.poison import poison_messages
from simulators.scenarios import POISON_INDEX, parse_scenario
from simulators.timebase import to_datetime
from streams.transport.sinks import FileSink

START = datetime(2025, 3, 3, 6, 0, tzinfo=VN_TZ)  # a Monday
FAST = SimParams(warmup_days=20)


@pytest.fixture(scope="module")
def pack() -> CityPack:
    return load_pack("halong")


def _config(**changes: object) -> SimConfig:
    base = SimConfig(start=START, duration=timedelta(hours=8), seed=7, params=FAST)
    return replace(base, **changes)  # type: ignore[arg-type]


def _write(config: SimConfig, pack: CityPack, path: Path) -> bytes:
    sink = FileSink(path)
    run(generate(config, pack), sink, PacingClock(config.start_s, None))
    sink.close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def day_items(pack: CityPack) -> list[Item]:
    """A full weekday with every scenario except poison, at default volumes."""
    scenarios = tuple(
        parse_scenario(s)
        for s in (
            "sensor_faults:after=1h,hours=6",
            "counter_outage:after=2h,hours=4",
            "pollution_episode:after=3h,hours=6",
            "tet_rush:after=0s,days=1",
        )
    )
    config = replace(
        _config(), start=datetime(2025, 3, 4, tzinfo=VN_TZ), duration=timedelta(days=1)
    )
    return list(generate(replace(config, scenarios=scenarios), pack))


def test_same_seed_gives_identical_bytes_other_seed_does_not(
    pack: CityPack, tmp_path: Path
) -> None:
    a = _write(_config(), pack, tmp_path / "a.ndjson")
    b = _write(_config(), pack, tmp_path / "b.ndjson")
    c = _write(_config(seed=8), pack, tmp_path / "c.ndjson")
    assert len(a) > 100_000
    assert a == b
    assert a != c
    # Different seeds share no event ids (ids name the run).
    ids_a = {msgspec.json.decode(line)["event_id"] for line in a.splitlines()}
    ids_c = {msgspec.json.decode(line)["event_id"] for line in c.splitlines()}
    assert not ids_a & ids_c


def test_gzip_output_is_deterministic_and_holds_the_same_lines(
    pack: CityPack, tmp_path: Path
) -> None:
    config = _config(duration=timedelta(hours=2))
    plain = _write(config, pack, tmp_path / "p.ndjson")
    gz1 = _write(config, pack, tmp_path / "x.ndjson.gz")
    gz2 = _write(config, pack, tmp_path / "y.ndjson.gz")
    assert gz1 == gz2
    assert gzip.decompress(gz1) == plain


def test_scenarios_and_options_change_the_output(pack: CityPack) -> None:
    base = [i[4] for i in generate(_config(duration=timedelta(hours=3)), pack)]
    scaled = [
        i[4]
        for i in generate(
            _config(duration=timedelta(hours=3), params=replace(FAST, volume_scale=0.5)), pack
        )
    ]
    assert base != scaled
    assert 0.35 < len(scaled) / len(base) < 0.65


def test_file_sink_lines_are_exactly_the_values(pack: CityPack, tmp_path: Path) -> None:
    config = _config(duration=timedelta(hours=1))
    values = [i[4] for i in generate(config, pack)]
    data = _write(config, pack, tmp_path / "v.ndjson")
    assert data == b"".join(v + b"\n" for v in values)


def test_per_topic_files(pack: CityPack, tmp_path: Path) -> None:
    config = _config(start=START + timedelta(hours=3), duration=timedelta(hours=1))
    items = list(generate(config, pack))
    sink = FileSink(str(tmp_path / "out") + "/", topic_name=lambda t: "x." + t)
    run(iter(items), sink, PacingClock(config.start_s, None))
    sink.close()
    for topic in BY_TOPIC:
        lines = (tmp_path / "out" / f"x.{topic}.ndjson").read_bytes().splitlines()
        assert lines == [i[4] for i in items if i[2] == topic]
        assert lines


def test_every_event_is_valid_ordered_and_keyed(pack: CityPack, day_items: list[Item]) -> None:
    feeds = {i[2] for i in day_items}
    assert feeds == set(BY_TOPIC)
    times = [i[0] for i in day_items]
    assert times == sorted(times)
    ids: set[str] = set()
    negatives = 0
    for t, index, topic, key, value, ward in day_items:
        # The merge order is the registry's: a feed's items carry its position in FEEDS.
        assert index == BY_TOPIC[topic].index
        # Emitted only once event_time <= simulated now: decode with now = emission time.
        try:
            ev = decode_event(value, wards=pack, now=to_datetime(t), expected_schema=topic)
        except Rejected as exc:
            # Only broken sensors send invalid readings in this run.
            assert exc.reason == "negative_value"
            assert topic == "ioc.air_quality.v1"
            negatives += 1
            continue
        assert int(ev.event_time.timestamp()) == t
        assert ev.event_time.utcoffset() == timedelta(hours=7)
        assert b'+07:00"' in value
        assert ev.event_id not in ids and len(ev.event_id) <= 64
        ids.add(ev.event_id)
        assert key == str(getattr(ev, BY_TOPIC[topic].key_field)).encode()
        assert ward == ev.ward_code
    assert negatives > 0


def test_case_events_follow_the_life_cycle(day_items: list[Item]) -> None:
    kinds: dict[str, list[str]] = {}
    histories: dict[str, CaseHistory] = {}
    statics: dict[str, tuple[object, ...]] = {}
    for _, _, topic, _, value, _ in day_items:
        if topic == "ioc.dossiers.v1":
            d = msgspec.json.decode(value, type=DossierEvent)
            case, kind = d.dossier_id, d.kind
            step = CaseEvent(d.event_id, kind, d.event_time, d.received_at, d.ward_code)
            static: tuple[object, ...] = (
                d.ward_code, d.procedure_field, d.channel, d.service_level, d.received_at,
                d.due_at, d.digitized, d.fee_vnd,
            )  # fmt: skip
            assert d.received_at <= d.due_at
            assert d.received_at <= d.event_time
            if kind == "received":
                assert d.event_time == d.received_at
        elif topic == "ioc.feedback.v1":
            f = msgspec.json.decode(value, type=FeedbackEvent)
            case, kind = f.report_id, f.kind
            step = CaseEvent(f.event_id, kind, f.event_time, f.submitted_at, f.ward_code or "")
            static = (f.category, f.urgency, f.channel, f.lat, f.lon, f.submitted_at, f.due_at)
            assert (f.rating is not None) == (kind == "rated")
        else:
            continue
        history = histories.setdefault(case, CaseHistory())
        assert history.check(LIFECYCLES[topic], step) is None, (case, kinds.get(case), kind)
        history.add(step)
        kinds.setdefault(case, []).append(kind)
        assert statics.setdefault(case, static) == static
    # Cases received during the day go through several steps the same day.
    assert any(len(k) >= 3 and k[0] == "received" for k in kinds.values())


def test_sensor_faults_emit_stuck_and_missing_readings(pack: CityPack) -> None:
    spec = parse_scenario(
        "sensor_faults:stations=AQ-06673-1+AQ-06688-1,modes=stuck+missing,after=0s,hours=6"
    )
    config = _config(duration=timedelta(hours=6), feeds=("air_quality",), scenarios=(spec,))
    readings: dict[str, list[AirQualityEvent]] = {}
    for item in generate(config, pack):
        ev = msgspec.json.decode(item[4], type=AirQualityEvent)
        readings.setdefault(ev.station_id, []).append(ev)
    stuck = readings["AQ-06673-1"]
    assert len(stuck) == 24
    assert len({(r.pm25, r.no2, r.co) for r in stuck}) == 1
    missing = readings["AQ-06688-1"]
    assert 3 <= len(missing) <= 21
    assert all(r.pm25 is None and r.pm10 is None for r in missing)
    healthy = readings["AQ-06691-1"] if "AQ-06691-1" in readings else readings["AQ-06697-1"]
    assert len(healthy) == 24 and len({r.pm25 for r in healthy}) > 10


def test_poison_batches_arrive_at_their_time(pack: CityPack) -> None:
    spec = parse_scenario("poison:after=30m,every=2h")
    config = _config(duration=timedelta(hours=5), scenarios=(spec,), feeds=("air_quality",))
    poison = [i for i in generate(config, pack) if i[1] == POISON_INDEX]
    times = sorted({i[0] for i in poison})
    assert times == [config.start_s + 1800 + k * 7200 for k in range(3)]
    expected = poison_messages(12345, to_datetime(times[0]), pack)
    first_batch = [i for i in poison if i[0] == times[0]]
    assert len(first_batch) == len(expected)
    assert {i[2] for i in first_batch} == {m.topic for m in expected}


def test_emission_waits_for_the_simulated_clock(pack: CityPack) -> None:
    """At x600, each message is sent only once the clock has reached its event time."""
    wall = [0.0]

    def monotonic() -> float:
        return wall[0]

    def sleep(seconds: float) -> None:
        wall[0] += seconds

    config = _config(duration=timedelta(minutes=30), feeds=("payments", "air_quality"))
    clock = PacingClock(config.start_s, 600.0, monotonic=monotonic, sleep=sleep)
    sent: list[tuple[float, int]] = []

    class Recorder:
        def send(self, topic: str, key: bytes | None, value: bytes) -> None:
            t = to_ts(value)
            sent.append((clock.now(), t))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    summary = run(generate(config, pack), Recorder(), clock)
    assert summary.total == len(sent) > 100
    assert all(now >= t for now, t in sent)
    # ...and not much later: the clock never overshoots by more than one sleep slice.
    assert all(now - t <= 0.25 * 600 + 1 for now, t in sent)
    assert 2.9 <= wall[0] <= 3.3  # 30 simulated minutes at x600


def to_ts(value: bytes) -> int:
    raw = msgspec.json.decode(value)["event_time"]
    return int(datetime.fromisoformat(raw).timestamp())
