"""Benchmark support: CPU seconds used by the local PostgreSQL server and Kafka broker (/proc).

The ingest benchmark runs the broker, the database and the consumer on the same cores; adding up
what each used shows whether a rate is limited by one of them or by the machine as a whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Snapshot:
    """Cumulative CPU seconds per component at one moment."""

    postgres: float
    kafka: float


def _stat(pid: str) -> list[str] | None:
    try:
        raw = (PROC / pid / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:  # the process ended while we looked
        return None
    # comm may contain spaces; it is closed by the last ')'.
    head, _, rest = raw.rpartition(")")
    return [head.split("(", 1)[-1], *rest.split()]


def _cmdline(pid: str) -> bytes:
    try:
        return (PROC / pid / "cmdline").read_bytes()
    except OSError:
        return b""


def snapshot() -> Snapshot:
    """CPU used so far by every postgres process (ended backends through the postmaster's
    reaped-children counters) and by the Kafka broker's JVM."""
    postgres = kafka = 0.0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if fields is None:
            continue
        comm, ppid = fields[0], fields[2]
        # After the comm, field k of proc(5) is at index k - 2 here: utime 14, stime 15,
        # cutime 16, cstime 17.
        own = (int(fields[12]) + int(fields[13])) / TICK
        reaped = (int(fields[14]) + int(fields[15])) / TICK
        if comm == "postgres":
            parent = _stat(ppid)
            is_postmaster = parent is None or parent[0] != "postgres"
            postgres += own + (reaped if is_postmaster else 0.0)
        elif comm == "java" and b"kafka.Kafka" in _cmdline(entry.name):
            kafka += own
    return Snapshot(postgres, kafka)


def used(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds per component between two snapshots."""
    return {
        "postgres_s": round(after.postgres - before.postgres, 2),
        "kafka_s": round(after.kafka - before.kafka, 2),
    }
