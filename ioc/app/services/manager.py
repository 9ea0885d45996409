"""Service control for the topic and table steps: up, down and status of Kafka and PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioc.app.services import kafka, postgres
from ioc.app.services.proc import Log
from ioc.app.services.state import (
    PROC,
    ConnectionInfo,
    ServiceError,
    connection_info,
    kafka_markers,
    load_state,
    pid_matches,
    postgres_markers,
    save_state,
    update_service,
)

SERVICES: tuple[str, ...] = ("postgres", "kafka")
LOCK_FILE = "services.lock"
LEASE_DIR = "leases"


@dataclass(frozen=True)
class ServiceStatus:
    """One line of `ioc services status`."""

    name: str
    up: bool
    address: str
    version: str
    pid: int | None
    log: str


def _print(line: str) -> None:
    print(line, flush=True)


def select(only: Sequence[str] | None) -> tuple[str, ...]:
    """The services to act on, in start order (PostgreSQL first: it is quicker to fail)."""
    if not only:
        return SERVICES
    unknown = [name for name in only if name not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}")
    return tuple(name for name in SERVICES if name in only)


@contextlib.contextmanager
def locked(data_dir: Path, log: Log) -> Iterator[None]:
    """One `up`/`down` at a time per data dir: several processes may share the services."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"services: waiting for another `ioc services` command on {data_dir}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(
    data_dir: Path,
    cache_dir: Path,
    only: Sequence[str] | None = None,
    log: Log = _print,
    owner: str = "cli",
) -> tuple[ConnectionInfo, list[str]]:
    """Start the selected services (reusing running ones); returns the connection details and
    the names of the services this call started.

    `owner` is recorded: "cli" services stay up until `ioc services down`; "session" services
    (started by a test session) are stopped by the last session that releases its lease.
    Asking from the CLI for a service a session started makes it a "cli" one.
    """
    data_dir = data_dir.resolve()
    cache_dir = cache_dir.expanduser().resolve()
    names = select(only)
    started_now: list[str] = []
    with locked(data_dir, log):
        for name in names:
            previous = load_state(data_dir).get(name)
            if name == "kafka":
                kafka.fetch_libs(cache_dir, log)
            t0 = time.monotonic()
            if name == "postgres":
                entry, fresh = postgres.up(data_dir, previous, log)
            else:
                entry, fresh = kafka.up(data_dir, cache_dir, previous, log)
            if fresh or owner == "cli":
                entry["owner"] = owner
            # Recorded with its pid before waiting: whatever happens next, `down` can stop it.
            update_service(data_dir, name, entry)
            if not fresh:
                continue
            try:
                if name == "postgres":
                    entry = postgres.finish(entry, log, t0)
                else:
                    entry = kafka.finish(entry, log, t0)
            except BaseException:
                # A half-started service is stopped at once rather than left for `down`.
                with contextlib.suppress(ServiceError):
                    _stop(name, entry, log)
                entry["pid"] = None
                update_service(data_dir, name, entry)
                raise
            update_service(data_dir, name, entry)
            started_now.append(name)
    return connection_info(load_state(data_dir)), started_now


def _stop(name: str, entry: dict[str, Any], log: Log) -> None:
    if name == "postgres":
        postgres.stop(entry, log)
    else:
        kafka.stop(entry, log)


def down(data_dir: Path, only: Sequence[str] | None = None, log: Log = _print) -> None:
    """Stop exactly the processes `up` recorded; keeps data and passwords for the next `up`."""
    data_dir = data_dir.resolve()
    names = select(only)
    with locked(data_dir, log):
        _down_locked(data_dir, names, log)


def _down_locked(data_dir: Path, names: Sequence[str], log: Log) -> None:
    state = load_state(data_dir)
    # Stop in reverse start order: consumers of Kafka may write to PostgreSQL.
    for name in reversed(names):
        entry = state.get(name)
        if not entry or entry.get("pid") is None:
            log(f"{name}: not running")
            continue
        pid = entry["pid"]
        if _alive(name, entry):
            t0 = time.monotonic()
            _stop(name, entry, log)
            log(f"{name}: stopped pid {pid} in {time.monotonic() - t0:.1f} s")
        else:
            log(f"{name}: recorded pid {pid} was already gone; cleaned the stale record")
        entry["pid"] = None
        state[name] = entry
        save_state(data_dir, state)


def acquire_lease(data_dir: Path, log: Log = _print) -> Path:
    """Register a user of the services (a test session) so that no other one stops them."""
    data_dir = data_dir.resolve()
    with locked(data_dir, log):
        leases = data_dir / LEASE_DIR
        leases.mkdir(exist_ok=True)
        path = leases / f"{os.getpid()}-{secrets.token_hex(4)}"
        path.write_text(f"{os.getpid()}\n", encoding="utf-8")
    return path


def live_leases(data_dir: Path, proc: Path = PROC) -> list[Path]:
    """Leases whose process still runs; those of crashed sessions are removed."""
    live: list[Path] = []
    for path in sorted((data_dir / LEASE_DIR).glob("*")):
        pid_text = path.name.split("-", 1)[0]
        if pid_text.isdigit() and pid_matches(int(pid_text), [], proc):
            live.append(path)
        else:
            path.unlink(missing_ok=True)
    return live


def release_lease(data_dir: Path, lease: Path, log: Log = _print) -> list[str]:
    """Drop a session's lease; the last session out stops the services sessions started.

    Returns the names it stopped. Services started with `ioc services up` are never stopped here.
    """
    data_dir = data_dir.resolve()
    with locked(data_dir, log):
        lease.unlink(missing_ok=True)
        if live_leases(data_dir):
            return []
        state = load_state(data_dir)
        names = [
            name
            for name in SERVICES
            if state.get(name, {}).get("owner") == "session"
            and state.get(name, {}).get("pid") is not None
        ]
        _down_locked(data_dir, names, log)
        return names


def _alive(name: str, entry: dict[str, Any]) -> bool:
    markers = postgres_markers(entry) if name == "postgres" else kafka_markers(entry)
    return pid_matches(entry.get("pid"), markers)


def status(data_dir: Path) -> list[ServiceStatus]:
    """Each service: up or down, address, version and pid as recorded and checked in /proc."""
    data_dir = data_dir.resolve()
    state = load_state(data_dir)
    out: list[ServiceStatus] = []
    for name in SERVICES:
        entry = state.get(name, {})
        alive = bool(entry) and _alive(name, entry)
        port = entry.get("port")
        address = f"127.0.0.1:{port}" if port else "-"
        if name == "postgres":
            # 'PostgreSQL 15.18 (Debian ...) on x86_64-pc-linux-gnu, compiled by ...': keep
            # the part before the platform.
            full = str(entry.get("version") or entry.get("binary_version") or "-")
            version = full.split(" on ", 1)[0]
        else:
            version = f"Apache Kafka {entry['version']}" if entry.get("version") else "-"
        pid = entry.get("pid") if alive else None
        out.append(ServiceStatus(name, alive, address, version, pid, str(entry.get("log", "-"))))
    return out
