"""Recording format, digest, retiming, pacing, timeline and bounded rebuild source (no services)."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from kafka.partitioner.default import murmur2

from ioc.app.commands.record import build_library
from ioc.app.commands.streaming import parse_time
from ioc.core.citypack import load_pack
from ioc.core.contracts import Event
from simulators.engine import SimConfig
from simulators.recordings import LIBRARY, path_of, record_simulation
from simulators.scenarios import parse_scenario
from streams.replay.capture import CaptureRange, RecordingSink, Timeline, merge_partitions
from streams.replay.player import replay
from streams.replay.rebuild import BoundedSource
from streams.replay.recording import (
    Header,
    Recorded,
    RecordingError,
    RecordingWriter,
    StreamDigest,
    decode_line,
    encode_line,
    open_recording,
)
from streams.replay.retime import Retimer, shift_to
from streams.transport.sinks import NullSink
from streams.transport.source import SourceRecord, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2025, 12, 10, tzinfo=UTC)


def rec(
    value: bytes, key: bytes | None = b"k", t: int = 0, partition: int = 0, offset: int = 0
) -> Recorded:
    return Recorded("ioc.payments.v1", partition, offset, 1_000 + t, key, value, t)


class RecordList(list[Recorded]):
    """A RecordWriter that keeps the records."""

    def write(self, rec: Recorded) -> None:
        self.append(rec)

    def close(self) -> None:
        pass


def sim_records(hours: int = 6, poison: bool = True) -> list[Recorded]:
    """A simulator run as recorded by the recording sink."""
    scenarios = (parse_scenario("poison:after=1h"),) if poison else ()
    config = SimConfig(start=START, duration=timedelta(hours=hours), seed=3, scenarios=scenarios)
    out = RecordList()
    sink = RecordingSink(out)
    n = record_simulation(config, load_pack("halong"), sink)
    sink.close()
    assert n == len(out)
    return list(out)


@pytest.mark.parametrize(
    ("value", "key", "embedded"),
    [
        (b'{"schema":"ioc.payments.v1","a":[1,2.5,null]}', b"M-1", True),
        (b'{"a": 1,\t"b": "x y"}', None, True),
        (b"\xff\xfe not utf-8", b"M-1", False),
        (b'{"a":\n1}', b"\xff\x00", False),
        (b" {}", b"", False),
        (b"[" * 5000 + b"]" * 5000, b"k", False),
        (b'{"s":"\xc3\xa1"}', b"ph\xc3\xa1p", True),
        (b"", None, False),
    ],
)
def test_line_round_trip_is_byte_exact(value: bytes, key: bytes | None, embedded: bool) -> None:
    r = rec(value, key, t=5, partition=2, offset=9)
    line = encode_line(r)
    assert b"\n" not in line
    assert (b'"value_b64"' not in line) == embedded
    msgspec.json.decode(line)  # every line is valid JSON on its own
    assert decode_line(line) == r


def test_writer_reader_round_trip_with_trailer(tmp_path: Path) -> None:
    records = sim_records()
    assert any(b"\n" in r.value or not r.value.startswith(b"{") for r in records)
    path = tmp_path / "r.ndjson.gz"
    writer = RecordingWriter(path, Header(source="test", feeds=["payments"], start=START))
    for r in records:
        writer.write(r)
    writer.close()
    recording = open_recording(path)
    assert recording.header.source == "test" and recording.header.start == START
    back = list(recording.records())
    assert back == records
    assert recording.trailer_records == len(records)
    digest = StreamDigest()
    for r in back:
        digest.add(r.topic, r.key, r.value)
    assert recording.trailer_digest == digest.hexdigest()
    # The same records give the same bytes (no time or name in the gzip header).
    again = tmp_path / "again.ndjson.gz"
    w2 = RecordingWriter(again, Header(source="test", feeds=["payments"], start=START))
    for r in records:
        w2.write(r)
    w2.close()
    assert again.read_bytes() == path.read_bytes()


def test_truncated_and_foreign_files_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.ndjson.gz"
    writer = RecordingWriter(path, Header(source="test", feeds=[]))
    for r in sim_records(hours=1, poison=False):
        writer.write(r)
    writer.close()
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(gzip.compress(b"\n".join(lines[:-2])))
    with pytest.raises(RecordingError, match="truncated"):
        list(open_recording(cut).records())
    other = tmp_path / "other.gz"
    other.write_bytes(gzip.compress(b'{"hello": 1}\n'))
    with pytest.raises(RecordingError, match="not an ioc-recording"):
        open_recording(other)
    plain = tmp_path / "plain.ndjson.gz"
    plain.write_bytes(b"not gzip at all")
    with pytest.raises(RecordingError):
        open_recording(plain)


def test_digest_sees_per_key_order_but_not_partitions_or_interleaving() -> None:
    a1, a2 = rec(b"1", b"a"), rec(b"2", b"a")
    b1 = rec(b"3", b"b")
    n1, n2 = rec(b"4", None), rec(b"5", None)

    def digest(rs: Sequence[Recorded]) -> str:
        d = StreamDigest()
        for r in rs:
            d.add(r.topic, r.key, r.value)
        return d.hexdigest()

    base = digest([a1, b1, a2, n1, n2])
    assert digest([b1, a1, n2, a2, n1]) == base  # other keys interleaved, unkeyed reordered
    assert digest([a2, b1, a1, n1, n2]) != base  # one entity's order changed
    assert digest([a1, b1, a2, n1]) != base  # a record missing
    assert digest([a1, b1, a2, n1, n2, n2]) != base  # a record duplicated
    assert digest([a1, rec(b"3", b"c"), a2, n1, n2]) != base  # another key


def test_retime_shifts_every_timestamp_and_keeps_poison() -> None:
    records = sim_records()
    shift = timedelta(days=3, hours=5, seconds=7)
    retimer = Retimer(shift)
    typed = msgspec.json.Decoder(Event)
    checked = set()
    kept = 0
    for r in records:
        out = retimer(r.value)
        try:
            before = typed.decode(r.value)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            assert out == r.value  # poison that is no event: replayed as it was
            kept += 1
            continue
        after = typed.decode(out)
        assert type(after) is type(before)
        for f in msgspec.structs.fields(before):
            old, new = getattr(before, f.name), getattr(after, f.name)
            if isinstance(old, datetime):
                assert new - old == shift and new.utcoffset() == old.utcoffset()
                checked.add(f.name)
            else:
                assert new == old
    assert {"event_time", "received_at", "due_at", "submitted_at"} <= checked
    assert kept > 0 and retimer.unchanged == kept and retimer.retimed == len(records) - kept


def test_retime_without_shift_is_byte_identical_for_events() -> None:
    retimer = Retimer(timedelta(0))
    for r in sim_records(hours=2, poison=False):
        assert retimer(r.value) == r.value


def test_retime_passes_an_event_it_cannot_shift_off_the_calendar() -> None:
    # The poison stream holds a payment from year 1 (a reset device clock): shifted back it
    # would leave the calendar, so it is replayed as recorded, and every other event is retimed.
    records = sim_records()
    year_one = [r.value for r in records if b'"0001-01-01' in r.value]
    assert year_one
    retimer = Retimer(-timedelta(days=30))
    for value in year_one:
        assert retimer(value) == value
    assert retimer.unchanged == len(year_one) and retimer.retimed == 0


def test_shift_to_whole_seconds() -> None:
    first = int(START.timestamp() * 1000) + 400
    target = START + timedelta(days=2, microseconds=300_000)
    assert shift_to(first, target) == timedelta(days=2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class StampingSink(NullSink):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.at: list[float] = []
        self.partitions: list[int | None] = []

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        time_ms: int | None = None,
    ) -> None:
        super().send(topic, key, value, partition, time_ms)
        self.at.append(self.clock.now)
        self.partitions.append(partition)


@pytest.mark.parametrize("speed", [1.0, 10.0, 60.0])
def test_pacing_follows_recorded_gaps_divided_by_speed(speed: float) -> None:
    times = [0, 0, 2_000, 5_000, 4_000, 60_000]  # ms; one step backwards
    clock = FakeClock()
    sink = StampingSink(clock)
    records = [rec(b"{}", t=t, partition=i % 2) for i, t in enumerate(times)]
    summary = replay(records, sink, speed=speed, monotonic=clock, sleep=clock.sleep)
    want = [100.0 + max(times[: i + 1]) / 1000 / speed for i in range(len(times))]
    assert sink.at == pytest.approx(want, abs=1e-9)
    assert sink.partitions == [i % 2 for i in range(len(times))]  # the recorded partitions
    assert summary.records == len(times) and summary.last_ms == 60_000


def test_max_speed_never_sleeps_and_transform_applies() -> None:
    clock = FakeClock()
    seen: list[bytes] = []

    class Capture(NullSink):
        def send(
            self,
            topic: str,
            key: bytes | None,
            value: bytes,
            partition: int | None = None,
            time_ms: int | None = None,
        ) -> None:
            seen.append(value)

    records = [rec(b"a", t=0), rec(b"b", t=10**9)]
    replay(
        records, Capture(), speed=None, transform=bytes.upper, monotonic=clock, sleep=clock.sleep
    )
    assert clock.sleeps == [] and seen == [b"A", b"B"]


def test_timeline_keeps_poison_beside_its_neighbours() -> None:
    tl = Timeline()
    ev = b'{"event_time":"2025-12-10T07:00:00+07:00"}'
    t0 = int(datetime.fromisoformat("2025-12-10T07:00:00+07:00").timestamp() * 1000)
    kafka_ts = t0 + 3_600_000
    assert tl.place(0, ev, kafka_ts) == t0
    assert tl.place(0, b"\xff junk", kafka_ts + 5) == t0
    future = b'{"event_time":"2030-01-01T00:00:00+07:00"}'
    assert tl.place(0, future, kafka_ts) == t0
    assert tl.place(1, b"junk", 77) == 77  # first of its partition: its Kafka time
    assert 5 in CaptureRange(None, 6) and 6 not in CaptureRange(None, 6)
    assert 4 not in CaptureRange(5, None)


def test_merge_keeps_each_partition_in_order() -> None:
    p0 = [rec(b"a", t=5, offset=0), rec(b"b", t=1, offset=1)]
    p1 = [rec(b"c", t=3, partition=1)]
    merged = list(merge_partitions([p0, p1]))
    assert [r.value for r in merged if r.partition == 0] == [b"a", b"b"]
    assert sorted(merged, key=lambda r: r.value) == sorted(p0 + p1, key=lambda r: r.value)


def test_recording_sink_partitions_like_kafka() -> None:
    records = sim_records(hours=2)
    offsets: dict[tuple[str, int], list[int]] = {}
    for r in records:
        if r.key is not None:
            assert r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 3
        offsets.setdefault((r.topic, r.partition), []).append(r.offset)
        assert r.timestamp_ms == r.time_ms
    for seq in offsets.values():
        assert seq == list(range(len(seq)))


class FakeSource:
    def __init__(self, batches: list[list[SourceRecord]]) -> None:
        self.batches = batches
        self.committed: list[Mapping[TopicPartition, int]] = []

    def poll(self, max_records: int, timeout_s: float) -> Sequence[SourceRecord]:
        return self.batches.pop(0) if self.batches else []

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.committed.append(offsets)

    def rewind(self) -> None:
        pass

    def lag(self) -> Mapping[TopicPartition, int] | None:
        return None

    def close(self) -> None:
        pass


def test_bounded_source_stops_at_the_end_offsets() -> None:
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)

    def sr(p: int, o: int) -> SourceRecord:
        return SourceRecord("t", p, o, None, b"x", 0)

    inner = FakeSource([[sr(0, 5), sr(0, 6), sr(1, 0)], [sr(0, 7), sr(0, 8), sr(1, 1)]])
    src = BoundedSource(inner, {tp0: 5, tp1: 0}, {tp0: 8, tp1: 2})
    assert src.remaining() == 5
    assert [(r.partition, r.offset) for r in src.poll(10, 0)] == [(0, 5), (0, 6), (1, 0)]
    assert src.lag() == {tp0: 1, tp1: 1}
    assert [(r.partition, r.offset) for r in src.poll(10, 0)] == [(0, 7), (1, 1)]
    assert src.remaining() == 0 and src.poll(10, 0) == []


def test_parse_time_forms() -> None:
    now = datetime(2025, 12, 10, 12, tzinfo=UTC)
    assert parse_time("now", now, "--from") == now
    assert parse_time("-2h", now, "--from") == now - timedelta(hours=2)
    assert parse_time("2025-12-10T07:00", now, "--from") == datetime(2025, 12, 10, tzinfo=UTC)
    from ioc.app.cli import CommandError

    for bad in ("yesterday", "-2x", "2025-13-01"):
        with pytest.raises(CommandError):
            parse_time(bad, now, "--from")


def test_library_is_regenerated_byte_for_byte(tmp_path: Path) -> None:
    built = build_library(["pollution_episode"], tmp_path)
    assert built["pollution_episode"] > 10_000
    assert (tmp_path / "pollution_episode.ndjson.gz").read_bytes() == path_of(
        "pollution_episode"
    ).read_bytes()
    for name in LIBRARY:
        assert path_of(name).stat().st_size < 5_000_000


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        ["replay", "scenario:nope", "--to", "null"],
        ["replay", str(tmp_path / "missing.ndjson.gz"), "--to", "null"],
        ["replay", "scenario:pollution_episode", "--to", "null", "--speed", "fast-ish"],
        ["replay", "scenario:pollution_episode", "--to", "null", "--kafka-patience", "-1"],
        ["record", str(tmp_path / "x.gz"), "--source", "simulator", "--from", "2025-12-10"],
        ["rebuild", "--schema", "bad name!"],
        ["recordings", "build", "nope"],
    ]
    for argv in cases:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from ioc.app.cli import main; sys.exit(main())",
                *argv,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "IOC_DATA_DIR": str(tmp_path)},
        )
        assert done.returncode != 0, argv
        assert len(done.stderr.strip().splitlines()) == 1, (argv, done.stderr)
        assert "Traceback" not in done.stderr


def test_replay_of_library_to_null_counts_every_record() -> None:
    recording = open_recording(path_of("pollution_episode"))
    records = list(itertools.islice(recording.records(), 1000))
    sink = NullSink()
    summary = replay(records, sink, speed=None)
    assert sink.messages == 1000
    assert summary.records == 1000 and summary.by_topic
    assert sum(summary.by_topic.values()) == 1000
