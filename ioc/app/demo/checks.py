"""Entry checks of the demo, before anything starts: a writable data directory that no other
demo holds, a free dashboard port, how a database is named without its password, and how an
error becomes the one line the demo prints."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.core.errors import IocError


class DemoError(IocError):
    """The demo cannot start; the message is one line saying what to do."""


def one_line(exc: BaseException) -> str:
    """An exception as one short line (drivers' messages span lines and quote whole queries)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_data_dir(path: Path) -> None:
    """Create it if needed and prove it is writable; DemoError in one line otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DemoError(
            f"the data directory {path} is not writable ({exc.strerror or exc}); "
            "choose another with --data-dir DIR or IOC_DATA_DIR"
        ) from None


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when something already listens on the dashboard's port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server will: a port in TIME_WAIT from a previous run is free to take.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DemoError(
                    f"port {port} on {host} is already in use; stop what runs there or "
                    f"choose another port with --port N or IOC_DASHBOARD_PORT"
                ) from None
            raise DemoError(f"cannot use {host}:{port} ({exc.strerror or exc})") from None


class DataDirLock:
    """One demo per data directory at a time (flock, released when the process ends)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "demo.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            other = fh.read().strip() or "?"
            fh.close()
            raise DemoError(
                f"another ioc demo (pid {other}) is using {self.path.parent}; stop it first "
                "or choose another --data-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def redact(conninfo: str) -> str:
    """A connection string without its password, as a stable key and for display."""
    try:
        parts = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "<unparsable database url>"
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in sorted(parts.items()) if v is not None})
