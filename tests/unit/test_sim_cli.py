"""`ioc simulate`: files, summary, determinism from the command line, one-line errors."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from ioc.app.cli import main
from ioc.core.pacing import PacingClock
from simulators.engine import SimConfig, generate, run
from streams.transport.sinks import NullSink


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("IOC_KAFKA_BOOTSTRAP", "IOC_TOPIC_PREFIX", "IOC_CITY_PACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IOC_DATA_DIR", str(tmp_path / "no-services"))


ARGS = ["simulate", "--seed", "3", "--start", "2025-03-03T08:00", "--duration", "2h"]


def test_file_output_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.ndjson"
    assert main([*ARGS, "--speed", "max", "--to", f"file:{out}", "--quiet"]) == 0
    lines = out.read_bytes().splitlines()
    by_schema = Counter(msgspec.json.decode(line)["schema"] for line in lines)
    times = [msgspec.json.decode(line)["event_time"] for line in lines]
    assert min(times) >= "2025-03-03T08:00:00+07:00"
    assert max(times) < "2025-03-03T10:00:00+07:00"
    text = capsys.readouterr().out
    assert f"{len(lines):,} events" in text
    for schema, feed in (("ioc.payments.v1", "payments"), ("ioc.dossiers.v1", "dossiers")):
        assert f"{feed:<12} {by_schema[schema]:>12,}" in text
    ward_lines = [ln for ln in text.splitlines() if ln.startswith("  0")]
    assert len(ward_lines) == 33
    assert sum(int(ln.split()[-1].replace(",", "")) for ln in ward_lines) == len(lines)
    assert "Phường Bãi Cháy" in text


def test_same_arguments_same_file(tmp_path: Path) -> None:
    a, b = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    assert main([*ARGS, "--speed", "max", "--to", f"file:{a}", "--quiet"]) == 0
    assert main([*ARGS, "--speed", "max", "--to", f"file:{b}", "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_feed_selection_and_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "aq.ndjson"
    argv = [*ARGS, "--speed", "max", "--feeds", "air_quality,feedback", "--quiet"]
    argv += ["--scenario", "sensor_faults:after=0s", "--to", f"file:{out}"]
    assert main(argv) == 0
    events = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert {e["schema"] for e in events} == {"ioc.air_quality.v1", "ioc.feedback.v1"}
    negative = [e for e in events if any((e.get(k) or 0) < 0 for k in ("pm25", "no2"))]
    assert negative  # the broken sensor's invalid readings are in the stream, as sent


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--feeds", "parking"], "unknown feed parking"),
        (["--duration", "5x"], "bad duration"),
        (["--speed", "0"], "bad speed"),
        (["--scenario", "alien_invasion"], "unknown scenario"),
        (["--start", "yesterday"], "not an ISO 8601"),
        (["--to", "ftp:somewhere"], "use kafka, file:PATH or null"),
        (["--volume-scale", "0"], "volume-scale must be positive"),
        (["--scenario", "pollution_episode:factor=-2"], "outside"),
        (["--kafka-patience", "soon"], "--kafka-patience='soon' is not a duration"),
        (["--kafka-patience", "25h"], "out of range"),
    ],
)
def test_bad_arguments_are_one_line(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--duration", "1h", "--speed", "max", "--to", "null", *extra]
    status = main(argv)
    err = capsys.readouterr().err
    assert status == 2
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_max_speed_needs_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--speed", "max", "--to", "null"]) == 2
    assert "needs --duration" in capsys.readouterr().err


def test_kafka_without_a_broker_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*ARGS, "--speed", "max", "--to", "kafka", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "no Kafka" in err and err.count("\n") == 1


def test_argparse_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--seed", "abc"])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_progress_is_reported_at_most_once_a_second() -> None:
    from datetime import datetime, timedelta

    from ioc.core.citypack import load_pack
    from ioc.core.contracts import VN_TZ

    calls: list[tuple[int, float, float]] = []
    config = SimConfig(start=datetime(2025, 3, 3, tzinfo=VN_TZ), duration=timedelta(days=2))
    summary = run(
        generate(config, load_pack("halong")),
        NullSink(),
        PacingClock(config.start_s, None),
        progress=lambda n, sim, wall: calls.append((n, sim, wall)),
    )
    assert len(calls) <= summary.wall_seconds + 1
    walls = [w for _, _, w in calls]
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(walls))
    assert all(config.start_s <= sim < config.start_s + 2 * 86400 for _, sim, _ in calls)
