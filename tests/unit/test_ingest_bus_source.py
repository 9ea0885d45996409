"""The in-process bus as a RecordSource: poll, commit, rewind to the committed offsets, lag."""

from __future__ import annotations

from streams.transport.bus import Bus
from streams.transport.bus_source import BusSource
from streams.transport.source import TopicPartition, next_offsets


def test_bus_source_polls_commits_rewinds_and_reports_lag() -> None:
    bus = Bus(default_partitions=2)
    for i in range(10):
        bus.produce("a", f"v{i}".encode(), key=f"k{i % 3}".encode())
    src = BusSource(bus, "g", ["a"])
    first = src.poll(4, 0.0)
    assert len(first) == 4
    src.commit(next_offsets(first))
    rest = src.poll(100, 0.0)
    assert len(first) + len(rest) == 10
    assert sum((src.lag() or {}).values()) == 0
    src.rewind()
    again = src.poll(100, 0.0)
    assert sorted(r.value for r in again) == sorted(r.value for r in rest)
    lag = src.lag() or {}
    assert set(lag) == {TopicPartition("a", 0), TopicPartition("a", 1)}
    src.close()
    # A new member of the group starts where the group committed.
    other = BusSource(bus, "g", ["a"])
    assert sorted(r.value for r in other.poll(100, 0.0)) == sorted(r.value for r in rest)
    other.close()
