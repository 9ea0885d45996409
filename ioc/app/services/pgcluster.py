"""The one PostgreSQL launcher of the demo and the dev services: initdb, our block of
postgresql.conf, start, wait until it accepts connections, stop.

What differs stays with each user: where the binaries come from, where the cluster lives, its
settings, and what is provisioned once it answers (roles, databases, extensions).

The postmaster (`postgres -D data`) is started directly, in its own session, so a terminal's
Ctrl-C or hang-up never reaches it: the demo stops its server itself, last, after ingest has
committed (and the server dies with the demo if that is killed); the dev services outlive the
`ioc services up` that started them, until `ioc services down`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from ioc.app.services import proc
from ioc.app.services.proc import Log, RunAs
from ioc.app.services.state import ServiceError, pid_matches, pid_starting, postgres_markers

# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the NUL).
MAX_SOCKET_PATH = 107
LOG_FILE = "postgres.log"
_PR_SET_PDEATHSIG = 1
# When a fast shutdown hangs, the immediate one (no checkpoint: recovery replays the WAL at the
# next start) gets this long before SIGKILL.
_QUIT_GRACE_S = 10.0


@dataclass(frozen=True)
class ServerOptions:
    """What a user of the launcher chooses; everything else is the same for every cluster."""

    conf_mark: str  # first line of the block we own at the end of postgresql.conf
    settings: tuple[tuple[str, str], ...] = ()  # (name, value as written in postgresql.conf)
    listen: str = "127.0.0.1"  # listen_addresses; '' means the unix socket only
    socket_dir: Path | None = None  # None: no unix socket (TCP only)
    superuser: str = "ioc_admin"
    auth: str = "trust"  # initdb --auth; "scram-sha-256" needs a password at initdb
    run_as: RunAs | None = None  # None unless we are root
    die_with_parent: bool = False  # True: the server gets SIGINT when this process dies
    name: str = "postgres"  # how log lines and errors name the server


def render_conf(port: int, options: ServerOptions) -> str:
    """Our block of postgresql.conf: where it listens, then the user's settings."""
    sockets = str(options.socket_dir) if options.socket_dir is not None else ""
    lines = [
        options.conf_mark,
        f"listen_addresses = '{options.listen}'",
        f"port = {port}",
        f"unix_socket_directories = '{sockets}'",
        *(f"{name} = {value}" for name, value in options.settings),
        "log_line_prefix = '%m [%p] %q%u@%d '",
    ]
    return "\n".join(lines) + "\n"


def socket_fits(socket_dir: Path, port: int) -> bool:
    """Whether the server's socket file for `port` in `socket_dir` fits the kernel's limit."""
    return len(str(socket_dir / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH


def make_private_dir(path: Path, run_as: RunAs | None) -> None:
    """A 0700 directory the server's account owns (mkdir's mode is masked by the umask)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)
    path.chmod(0o700)


def postmaster_pid(data: Path) -> int | None:
    """The pid in postmaster.pid, or None when there is no such file."""
    try:
        first = (data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        return int(first.strip())
    except (OSError, ValueError):
        return None


def is_postmaster(pid: object, data: Path) -> bool:
    """True when `pid` runs postgres on `data` (a recycled pid is left alone)."""
    return pid_matches(pid, postgres_markers({"cluster_dir": data}))


def stop_postmaster(pid: int, data: Path, log: Log, name: str, timeout: float = 60.0) -> None:
    """Fast shutdown (SIGINT); SIGQUIT if it hangs, SIGKILL last. Only our postmaster is hit."""
    markers = postgres_markers({"cluster_dir": data})
    steps = ((signal.SIGINT, timeout), (signal.SIGQUIT, _QUIT_GRACE_S), (signal.SIGKILL, 5.0))
    for sig, grace in steps:
        proc.reap(pid)
        if not pid_matches(pid, markers):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if proc.wait_gone(pid, markers, grace):
            return
        log(f"{name}: pid {pid} still runs {grace:.0f} s after {sig.name}")
    raise ServiceError(f"{name} pid {pid} is still running; see {data.parent / LOG_FILE}")


def stop_leftover(data: Path, log: Log, name: str) -> None:
    """Stop a postmaster of this cluster nobody recorded (its `ioc` was killed), and remove a
    postmaster.pid whose pid is no longer our postmaster, so that ours can start."""
    pid = postmaster_pid(data)
    if pid is None:
        return
    if is_postmaster(pid, data):
        log(f"{name}: stopping a leftover server (pid {pid}) of {data}")
        stop_postmaster(pid, data, log, name, 30.0)
    else:
        log(f"{name}: removing stale {data / 'postmaster.pid'} (pid {pid} is not our postmaster)")
        (data / "postmaster.pid").unlink(missing_ok=True)


def _die_with_parent(sig: int) -> Callable[[], None]:
    """preexec_fn: the child gets `sig` when this process dies, even by SIGKILL (Linux)."""

    def set_pdeathsig() -> None:
        # Set in the child after Popen dropped to the server's account: a change of
        # credentials clears the parent-death signal.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return set_pdeathsig


class PgCluster:
    """One cluster: `data` (PGDATA) inside `root = data.parent`, which holds postgres.log."""

    def __init__(
        self,
        bindir: Path,
        data: Path,
        port: int,
        options: ServerOptions,
        log: Log,
        *,
        pid: int | None = None,
    ) -> None:
        self.bindir = bindir
        self.data = data
        self.port = port
        self.options = options
        self.root = data.parent
        self.log_path = self.root / LOG_FILE
        self.pid = pid  # of a server started before, by this process or an earlier one
        self._log = log
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    # -- configuration ----------------------------------------------------------------------
    def initdb(self, password: str | None = None) -> None:
        """A fresh cluster (replacing what is in `data`) with our block of settings."""
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster, or one whose passwords are lost
        name = self.options.name
        self._log(f"{name}: creating the cluster in {self.data}")
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.options.superuser]
        cmd += [f"--auth={self.options.auth}", "-E", "UTF8", "--locale=C.UTF-8"]
        cmd += ["--no-instructions"]
        with self._password_file(password) as pwfile:
            if pwfile is not None:
                cmd.append(f"--pwfile={pwfile}")
            self._own_log()
            proc.run(
                cmd,
                "initdb",
                cwd=self.root,
                log_path=self.log_path,
                timeout=120,
                run_as=self.options.run_as,
            )
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n" + render_conf(self.port, self.options))

    def refresh_conf(self) -> None:
        """Rewrite the block we appended (new port or socket, this version's settings)."""
        conf = self.data / "postgresql.conf"
        text = conf.read_text(encoding="utf-8")
        head, sep, _ = text.rpartition(self.options.conf_mark)
        if not sep:
            raise ServiceError(f"{conf} lacks the block `ioc` writes; delete {self.data}")
        conf.write_text(head + render_conf(self.port, self.options), encoding="utf-8")

    @contextlib.contextmanager
    def _password_file(self, password: str | None) -> Iterator[Path | None]:
        """initdb reads the superuser's password from a file only the server's account reads."""
        if password is None:
            yield None
            return
        path = self.root / "initdb.pw"
        path.write_text(password + "\n", encoding="utf-8")
        path.chmod(0o600)
        run_as = self.options.run_as
        if run_as is not None:
            os.chown(path, run_as.uid, run_as.gid)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> int:
        """Run the postmaster (after stopping a leftover one); returns its pid at once."""
        options = self.options
        stop_leftover(self.data, self._log, options.name)
        if options.socket_dir is not None:
            # Made on every start: a fallback under /tmp may have been cleaned since.
            make_private_dir(options.socket_dir, options.run_as)
        extra: dict[str, Any] = proc.as_user(options.run_as)
        if options.die_with_parent:
            extra["preexec_fn"] = _die_with_parent(signal.SIGINT)
        try:
            with self._own_log().open("ab") as out:
                child = subprocess.Popen(  # noqa: S603 - fixed argv built here
                    [str(self.bindir / "postgres"), "-D", str(self.data)],
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    **extra,
                )
        except OSError as exc:
            raise ServiceError(f"{options.name} could not start: {exc.strerror or exc}") from None
        if options.die_with_parent:
            self._child = child
        else:
            # Detached: it outlives this process, so Popen must not warn that it still runs.
            child.returncode = 0
        self.pid = child.pid
        return child.pid

    def alive(self) -> bool:
        """Whether the postmaster we started (or were given) still runs."""
        if self._child is not None:
            return self._child.poll() is None
        if self.pid is None:
            return False
        proc.reap(self.pid)
        # Right after exec the kernel may show an empty command line for a moment.
        return is_postmaster(self.pid, self.data) or pid_starting(self.pid)

    def wait_ready(self, conninfo: str, timeout: float) -> None:
        """Until `conninfo` (any role, database "postgres") logs in; fail early if it exits."""
        deadline = time.monotonic() + timeout
        name = self.options.name
        while True:
            if not self.alive():
                status = f" (status {self._child.returncode})" if self._child else ""
                raise ServiceError(f"{name} exited during start-up{status}; see {self.log_path}")
            try:
                with psycopg.connect(
                    conninfo, autocommit=True, dbname="postgres", connect_timeout=5
                ) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"{name} did not accept connections within {timeout:.0f} s "
                        f"({proc.last_line(str(exc))}); see {self.log_path}"
                    ) from None
                time.sleep(0.1)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the postmaster we started (see stop_postmaster); nothing when none runs."""
        pid, self.pid, self._child = self.pid, None, None
        if pid is not None:
            stop_postmaster(pid, self.data, self._log, self.options.name, timeout)

    def _own_log(self) -> Path:
        """The log file, owned by the server's account: the server appends to it, not just us."""
        self.log_path.touch(mode=0o640, exist_ok=True)
        run_as = self.options.run_as
        if run_as is not None:
            os.chown(self.log_path, run_as.uid, run_as.gid)
        return self.log_path
