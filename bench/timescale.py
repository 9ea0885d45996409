"""Benchmarks of TimescaleDB against plain PostgreSQL on the same server ("TimescaleDB for real").

Run: python -m bench.timescale PHASE [options] (needs `ioc services up`), PHASE one of
  ingest     the same pre-produced events through `ioc ingest` into a schema of database ioc
             (hypertables) and of database ioc_plain (plain tables), interleaved, and the peer
             (quix-streams' PostgreSQLSink, in a venv of its own) against `ioc ingest` on the
             payments topic; -> bench/results/timescale_ingest.json (bench/ts_ingest.py)
  storage    bytes per raw event as plain tables, hypertables and compressed hypertables, and
             compression layouts measured on the product's raw-row reads;
             -> bench/results/timescale_storage.json (bench/ts_storage.py)
  caggs      a continuous aggregate of payments beside the hand-kept hourly rollup: freshness,
             ingest cost, query time; -> bench/results/timescale_caggs.json (bench/ts_caggs.py)
  retention  the retention and compression policies run on a scratch schema;
             -> bench/results/timescale_retention.json (bench/ts_retention.py)
Every phase works in scratch schemas it drops at the end and writes the machine beside its
numbers. Query time on compressed history: python -m bench.dashboard --compress.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from ioc.app.services.state import DATABASE, PLAIN_DATABASE, ConnectionInfo, read_connection_info
from ioc.core.db.migrate import migrate

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ENGINES = {"timescaledb": DATABASE, "plain": PLAIN_DATABASE}
RAW_TABLES = ("dossier_events", "payment_events", "feedback_events", "air_quality_readings")
TICK = os.sysconf("SC_CLK_TCK")


def log(phase: str, line: str) -> None:
    print(f"bench.timescale {phase}: {line}", file=sys.stderr, flush=True)


def services() -> ConnectionInfo:
    info = read_connection_info(REPO / ".ioc")
    if not (info.admin_url and info.writer_url and info.reader_url and info.kafka_bootstrap):
        raise SystemExit("bench.timescale: start the services first: ioc services up")
    return info


def in_database(url: str, database: str) -> str:
    """The same server and role, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def fresh_schema(admin_url: str, prefix: str) -> str:
    """A newly migrated schema (hypertables when the database has TimescaleDB)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    migrate(admin_url, schema=name)
    return name


def drop_schema(admin_url: str, schema: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def has_timescaledb(conn: psycopg.Connection[Any]) -> bool:
    found = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    opted = conn.execute("SELECT current_setting('ioc.timescaledb', true)").fetchone()
    return found is not None and not (opted and str(opted[0]).lower() in ("off", "false", "0"))


def write_results(name: str, result: dict[str, Any]) -> Path:
    path = RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process, in seconds (None once it has gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = raw.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _socket_inodes(pid: int) -> set[str]:
    out: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(target[8:-1])
    except OSError:
        pass
    return out


def client_ports(pid: int, server_port: int) -> set[int]:
    """Local ports of the TCP connections that process `pid` holds to `server_port`."""
    inodes = _socket_inodes(pid)
    ports: set[int] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[9] not in inodes:
                continue
            local, remote = cols[1], cols[2]
            if int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class BackendCpu:
    """CPU seconds of the PostgreSQL backends serving one client process, sampled while it runs.

    The backends are found by the client's own TCP connections (its local ports, matched in
    pg_stat_activity), so other users of the same server are not counted. Each backend's last
    reading is kept; the client must keep its connections open a moment after its last write
    (`ioc ingest --stop-when-idle` and the peer child both do) so that reading is final.
    """

    def __init__(self, admin_url: str, client_pid: int, interval: float = 0.2) -> None:
        self._url = admin_url
        self._pid = client_pid
        self._interval = interval
        self._port = urlsplit(admin_url).port or 5432
        self._cpu: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def seconds(self) -> float:
        return round(sum(self._cpu[p] - self._start.get(p, 0.0) for p in self._cpu), 3)

    @property
    def backends(self) -> int:
        return len(self._cpu)

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            known: dict[int, int] = {}
            while not self._stop.is_set():
                ports = client_ports(self._pid, self._port)
                new = [p for p in ports if p not in known]
                if new:
                    for pid, port in conn.execute(
                        "SELECT pid, client_port FROM pg_stat_activity "
                        "WHERE client_port = ANY(%(p)s)",
                        {"p": new},
                    ).fetchall():
                        known[int(port)] = int(pid)
                for port in ports:
                    backend = known.get(port)
                    if backend is None:
                        continue
                    used = proc_cpu_s(backend)
                    if used is not None:
                        # A backend first seen mid-run started at zero: it was new then.
                        self._start.setdefault(backend, 0.0)
                        self._cpu[backend] = used
                self._stop.wait(self._interval)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    phases = ("ingest", "storage", "caggs", "retention")
    if not args or args[0] not in phases:
        print(__doc__, file=sys.stderr)
        return 2
    phase, rest = args[0], args[1:]
    if phase == "ingest":
        from bench import ts_ingest

        return ts_ingest.main(rest)
    if phase == "storage":
        from bench import ts_storage

        return ts_storage.main(rest)
    if phase == "caggs":
        from bench import ts_caggs

        return ts_caggs.main(rest)
    from bench import ts_retention

    return ts_retention.main(rest)


if __name__ == "__main__":
    sys.exit(main())
