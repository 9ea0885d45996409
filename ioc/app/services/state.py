"""Service state for the topic and table steps: where local Kafka and PostgreSQL run, and how."""

from __future__ import annotations

import json
import os
import secrets
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ioc.core.errors import IocError

STATE_FILE = "services.json"
PROC = Path("/proc")
DATABASE = "ioc"
# The same server's second database, kept without TimescaleDB (tests prove the plain path on it).
PLAIN_DATABASE = "ioc_plain"
ADMIN_ROLE = "ioc_admin"
WRITER_ROLE = "ioc_writer"
READER_ROLE = "ioc_reader"


class ServiceError(IocError):
    """A service could not be started, stopped or inspected; the message is one line."""


@dataclass(frozen=True)
class ConnectionInfo:
    """How to reach the services `ioc services up` started; None for a service that is down."""

    admin_url: str | None
    writer_url: str | None
    reader_url: str | None
    kafka_bootstrap: str | None


def state_path(data_dir: Path) -> Path:
    """The state file (mode 0600: it holds passwords)."""
    return data_dir / STATE_FILE


def load_state(data_dir: Path) -> dict[str, dict[str, Any]]:
    """The recorded state per service name; empty when there is no state file yet."""
    path = state_path(data_dir)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ServiceError(
            f"{path} is not valid JSON ({exc.msg}); delete it to start afresh"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ServiceError(f"{path} is not a services state file; delete it to start afresh")
    return data


def save_state(data_dir: Path, state: Mapping[str, Mapping[str, Any]]) -> None:
    """Write the state atomically with mode 0600, so a reader never sees half a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".services.", suffix=".json", dir=data_dir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, state_path(data_dir))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_service(data_dir: Path, name: str, entry: Mapping[str, Any] | None) -> None:
    """Replace (or with None remove) one service's entry, keeping the others."""
    state = load_state(data_dir)
    if entry is None:
        state.pop(name, None)
    else:
        state[name] = dict(entry)
    save_state(data_dir, state)


def pid_matches(pid: object, markers: Sequence[str], proc: Path = PROC) -> bool:
    """True if `pid` is a live, non-zombie process whose command line holds every marker.

    A pid left behind by a crash may have been reused by another program, so being alive is
    not enough: the command line must still be the one we started.
    """
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    cmdline = _live_cmdline(pid, proc)
    if cmdline is None:
        return False
    text = cmdline.replace(b"\0", b" ").decode("utf-8", errors="replace")
    return all(marker in text for marker in markers)


def pid_starting(pid: int, proc: Path = PROC) -> bool:
    """True if `pid` is alive with an empty command line: a child just exec'd, whose arguments
    the kernel does not show yet (seen for the broker's JVM, about 1 start in 4)."""
    return _live_cmdline(pid, proc) == b""


def _live_cmdline(pid: int, proc: Path) -> bytes | None:
    """The raw command line of a live, non-zombie `pid`; None when it is gone or a zombie."""
    try:
        cmdline = (proc / str(pid) / "cmdline").read_bytes()
        stat = (proc / str(pid) / "stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    # The state letter follows the parenthesised command name, which may itself hold ')'.
    fields = stat[stat.rfind(")") + 1 :].split()
    if not fields or fields[0] in {"Z", "X", "x"}:
        return None
    return cmdline


def reusable(
    name: str, entry: Mapping[str, Any], markers: Sequence[str], log: Callable[[str], None]
) -> bool:
    """True when the service's recorded process still runs (`up` reuses it); else says why a
    recorded pid is not reused."""
    if entry and pid_matches(entry.get("pid"), markers):
        log(f"{name}: already running (pid {entry['pid']}, 127.0.0.1:{entry['port']})")
        return True
    if entry.get("pid") is not None:
        log(f"{name}: recorded pid {entry['pid']} is gone or not ours; starting afresh")
    return False


# Services listen below the kernel's ephemeral range: a port from that range (what binding port 0
# gives) can be taken by any outgoing connection between our check and the server's bind, which
# made the broker exit during start-up about 1 start in 4 while tests kept many connections open.
SERVICE_PORTS = (20_000, 32_000)


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands to outgoing connections (32768 when unreadable)."""
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now, outside the ephemeral range."""
    low, high = SERVICE_PORTS[0], min(SERVICE_PORTS[1], ephemeral_low())
    for _ in range(100):
        port = low + secrets.randbelow(max(high - low, 1))
        if port_is_free(port, host):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))  # a crowded range: let the kernel pick
        picked: int = sock.getsockname()[1]
        return picked


def port_is_free(port: object, host: str = "127.0.0.1") -> bool:
    """True if `port` can be bound on `host` now; used to keep a service's previous port."""
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so a port held only by TIME_WAIT leftovers of the
        # previous run is free for them; test it the same way.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_ports(previous: Sequence[object], count: int, host: str = "127.0.0.1") -> list[int]:
    """Reuse the previous ports when all are still free (stable URLs), else fresh distinct ones."""
    kept = [p for p in previous if isinstance(p, int) and not isinstance(p, bool)]
    if len(kept) == count and len(set(kept)) == count and all(port_is_free(p, host) for p in kept):
        return kept
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def postgres_url(role: str, password: str, port: int, host: str = "127.0.0.1") -> str:
    """postgresql://role:password@host:port/ioc with the user and password percent-encoded."""
    return (
        f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}:{port}/{DATABASE}"
    )


def connection_info(state: Mapping[str, Mapping[str, Any]], proc: Path = PROC) -> ConnectionInfo:
    """Connection details of the services whose recorded process is still the one we started."""
    admin = writer = reader = bootstrap = None
    pg = state.get("postgres", {})
    if pg and pid_matches(pg.get("pid"), postgres_markers(pg), proc):
        try:
            port = int(pg["port"])
            admin = postgres_url(ADMIN_ROLE, str(pg["admin_password"]), port)
            writer = postgres_url(WRITER_ROLE, str(pg["writer_password"]), port)
            reader = postgres_url(READER_ROLE, str(pg["reader_password"]), port)
        except (KeyError, TypeError, ValueError):
            admin = writer = reader = None
    kafka = state.get("kafka", {})
    if kafka and pid_matches(kafka.get("pid"), kafka_markers(kafka), proc):
        kafka_port = kafka.get("port")
        if isinstance(kafka_port, int):
            bootstrap = f"127.0.0.1:{kafka_port}"
    return ConnectionInfo(admin, writer, reader, bootstrap)


def read_connection_info(data_dir: Path) -> ConnectionInfo:
    """Connection details from `<data_dir>/services.json`; Nones for services that are not up."""
    try:
        state = load_state(data_dir)
    except ServiceError:
        return ConnectionInfo(None, None, None, None)
    return connection_info(state)


def postgres_markers(entry: Mapping[str, Any]) -> list[str]:
    """What the postmaster's command line must hold: the binary and its cluster directory."""
    return ["postgres", f"-D {entry.get('cluster_dir', '')}"]


def kafka_markers(entry: Mapping[str, Any]) -> list[str]:
    """What the broker's command line must hold: the main class and its own config file."""
    return ["kafka.Kafka", str(entry.get("config", ""))]


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_CACHE_HOME/ioc, or ~/.cache/ioc; the caller passes the entry point's environment."""
    base = environ.get("XDG_CACHE_HOME", "").strip()
    root = Path(base) if base else Path(environ.get("HOME", str(Path.home()))) / ".cache"
    return root / "ioc"
