"""In-process bus: offsets, keyed partitioning, consumer groups and thread safety."""

from __future__ import annotations

import threading
import time
import zlib

import pytest

from streams.transport.bus import Bus, BusError, partition_for


def test_offsets_are_dense_per_partition_and_keys_stick_to_one_partition() -> None:
    bus = Bus()
    placed = [bus.produce("t", f"v{i}".encode(), key=f"k{i % 5}".encode()) for i in range(50)]
    by_key: dict[int, set[int]] = {}
    for i, (partition, _) in enumerate(placed):
        by_key.setdefault(i % 5, set()).add(partition)
    assert all(len(parts) == 1 for parts in by_key.values())
    for k, parts in by_key.items():
        assert parts == {zlib.crc32(f"k{k}".encode()) % 3}
    per_partition: dict[int, list[int]] = {}
    for partition, offset in placed:
        per_partition.setdefault(partition, []).append(offset)
    for offsets in per_partition.values():
        assert offsets == list(range(len(offsets)))
    assert bus.end_offsets("t") == {p: len(per_partition.get(p, [])) for p in range(3)}


def test_unkeyed_messages_round_robin() -> None:
    bus = Bus(default_partitions=4)
    parts = [bus.produce("t", b"x")[0] for _ in range(8)]
    assert parts == [0, 1, 2, 3, 0, 1, 2, 3]


def test_partition_for_is_stable() -> None:
    assert partition_for(b"AQ-06673-1", 3) == zlib.crc32(b"AQ-06673-1") % 3


def test_poll_returns_records_in_partition_order_with_metadata() -> None:
    bus = Bus()
    for i in range(30):
        bus.produce("t", str(i).encode(), key=b"same", timestamp_ms=1000 + i)
    c = bus.consumer("g", ["t"])
    got = c.poll(max_records=100, timeout=0)
    assert [r.value for r in got] == [str(i).encode() for i in range(30)]
    assert [r.offset for r in got] == list(range(30))
    assert {r.partition for r in got} == {partition_for(b"same", 3)}
    assert got[5].timestamp_ms == 1005 and got[5].key == b"same" and got[5].topic == "t"
    assert c.poll(max_records=10, timeout=0) == []


def test_max_records_is_respected_and_polls_resume() -> None:
    bus = Bus()
    for i in range(25):
        bus.produce("t", str(i).encode(), key=str(i).encode())
    c = bus.consumer("g", ["t"])
    seen = []
    while batch := c.poll(max_records=7, timeout=0):
        assert len(batch) <= 7
        seen.extend(batch)
    assert sorted(int(r.value) for r in seen) == list(range(25))


def test_committed_offsets_survive_a_new_member() -> None:
    bus = Bus()
    for i in range(10):
        bus.produce("t", str(i).encode(), partition=0)
    c1 = bus.consumer("g", ["t"])
    first = c1.poll(max_records=4, timeout=0)
    assert [r.offset for r in first] == [0, 1, 2, 3]
    c1.commit({("t", 0): 4})
    c1.close()
    assert bus.committed("g", "t", 0) == 4
    c2 = bus.consumer("g", ["t"])
    rest = c2.poll(max_records=100, timeout=0)
    assert [r.offset for r in rest] == list(range(4, 10))
    # Another group starts from the beginning.
    other = bus.consumer("h", ["t"]).poll(max_records=100, timeout=0)
    assert len(other) == 10


def test_commit_without_offsets_commits_positions() -> None:
    bus = Bus()
    for i in range(6):
        bus.produce("t", b"x", partition=i % 3)
    c = bus.consumer("g", ["t"])
    c.poll(max_records=100, timeout=0)
    c.commit()
    assert [bus.committed("g", "t", p) for p in range(3)] == [2, 2, 2]


def test_latest_reset_skips_history() -> None:
    bus = Bus()
    bus.produce("t", b"old", partition=0)
    c = bus.consumer("g", ["t"], auto_offset_reset="latest")
    assert c.poll(timeout=0) == []
    bus.produce("t", b"new", partition=0)
    assert [r.value for r in c.poll(timeout=0)] == [b"new"]


def test_group_members_split_partitions_and_rebalance_on_leave() -> None:
    bus = Bus()
    bus.create_topic("t", 4)
    a = bus.consumer("g", ["t"])
    b = bus.consumer("g", ["t"])
    pa, pb = set(a.assignment()), set(b.assignment())
    assert pa.isdisjoint(pb)
    assert pa | pb == {("t", p) for p in range(4)}
    assert len(pa) == len(pb) == 2
    b.close()
    assert set(a.assignment()) == {("t", p) for p in range(4)}


def test_poll_waits_for_a_producer_thread() -> None:
    bus = Bus()
    c = bus.consumer("g", ["t"])

    def later() -> None:
        time.sleep(0.1)
        bus.produce("t", b"hello", key=b"k")

    thread = threading.Thread(target=later)
    t0 = time.monotonic()
    thread.start()
    got = c.poll(max_records=10, timeout=5.0)
    thread.join()
    assert [r.value for r in got] == [b"hello"]
    assert time.monotonic() - t0 < 4.0
    t1 = time.monotonic()
    assert c.poll(max_records=10, timeout=0.2) == []
    assert time.monotonic() - t1 >= 0.19


def test_concurrent_producers_lose_nothing_and_keep_per_key_order() -> None:
    bus = Bus()
    n_threads, per_thread = 4, 2000

    def produce(worker: int) -> None:
        for i in range(per_thread):
            bus.produce("t", f"{worker}:{i}".encode(), key=f"w{worker}".encode())

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(n_threads)]
    for th in threads:
        th.start()
    c = bus.consumer("g", ["t"])
    got = []
    deadline = time.monotonic() + 10
    while len(got) < n_threads * per_thread and time.monotonic() < deadline:
        got.extend(c.poll(max_records=500, timeout=0.5))
    for th in threads:
        th.join()
    assert len(got) == n_threads * per_thread
    last: dict[str, int] = {}
    for r in got:
        worker, i = r.value.decode().split(":")
        assert int(i) == last.get(worker, -1) + 1
        last[worker] = int(i)


def test_retention_drops_oldest_and_readers_skip_ahead() -> None:
    bus = Bus(retention=5)
    for i in range(12):
        bus.produce("t", str(i).encode(), partition=0)
    c = bus.consumer("g", ["t"])
    got = c.poll(max_records=100, timeout=0)
    assert [r.offset for r in got if r.partition == 0] == list(range(7, 12))


def test_seek_and_position() -> None:
    bus = Bus()
    for i in range(5):
        bus.produce("t", str(i).encode(), partition=1)
    c = bus.consumer("g", ["t"])
    c.poll(max_records=100, timeout=0)
    assert c.position("t", 1) == 5
    c.seek("t", 1, 2)
    assert [r.offset for r in c.poll(max_records=100, timeout=0)] == [2, 3, 4]
    c.seek("t", 1, 99)
    assert c.position("t", 1) == 5


def test_misuse_is_reported() -> None:
    bus = Bus()
    with pytest.raises(BusError):
        bus.produce("t", b"x", partition=7)
    c = bus.consumer("g", ["t"])
    with pytest.raises(BusError):
        c.commit({("t", 0): 5})
    with pytest.raises(BusError):
        c.commit({("nope", 0): 0})
    with pytest.raises(BusError):
        c.poll(max_records=0)
    c.close()
    with pytest.raises(BusError):
        c.poll()
    with pytest.raises(BusError):
        Bus(default_partitions=0)
    with pytest.raises(BusError):
        bus.consumer("g", [])
