"""Table step's server: a PostgreSQL cluster owned by the project, on a free loopback port.

The binaries are the system's (Debian's postgresql); the cluster is started and stopped by the
shared launcher (pgcluster). What is this service's own: roles with passwords, the databases
ioc and ioc_plain, and TimescaleDB preloaded and created when it is installed.
"""

from __future__ import annotations

import hashlib
import pwd
import secrets
import time
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from ioc.app.services import proc
from ioc.app.services.pgcluster import (
    PgCluster,
    ServerOptions,
    make_private_dir,
    socket_fits,
    stop_leftover,
    stop_postmaster,
)
from ioc.app.services.proc import Log, RunAs
from ioc.app.services.state import (
    ADMIN_ROLE,
    DATABASE,
    PLAIN_DATABASE,
    READER_ROLE,
    WRITER_ROLE,
    ServiceError,
    pick_ports,
    postgres_markers,
    postgres_url,
    reusable,
)

NAME = "postgres"
PG_ROOT = Path("/usr/lib/postgresql")
TOOLS = ("initdb", "postgres")
PASSWORD_KEYS = ("admin_password", "writer_password", "reader_password")
# pg_ctl start -w used to wait up to 60 s for the start-up, then 30 s for the first login.
READY_TIMEOUT_S = 90.0


def find_bindir(pg_root: Path = PG_ROOT) -> Path | None:
    """The bin directory of the newest installed PostgreSQL server, or None."""
    found: list[tuple[int, Path]] = []
    for candidate in pg_root.glob("*/bin"):
        if candidate.parent.name.isdigit() and all((candidate / t).is_file() for t in TOOLS):
            found.append((int(candidate.parent.name), candidate))
    return max(found)[1] if found else None


def ensure_bindir(log: Log) -> Path:
    """Server binaries, installed from Debian's packages when missing and we are root."""
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if not proc.is_root():
        raise ServiceError(
            "PostgreSQL server binaries not found under /usr/lib/postgresql; "
            "install them with: sudo apt-get install -y postgresql (or run scripts/setup-system.sh)"
        )
    log("postgres: server binaries missing; installing Debian's postgresql with apt-get")
    env = proc.which("env", "install coreutils")
    apt = proc.which("apt-get", "this needs a Debian-like system with apt-get")
    proc.run([env, "DEBIAN_FRONTEND=noninteractive", apt, "update"], "apt-get update")
    proc.run(
        [env, "DEBIAN_FRONTEND=noninteractive", apt, "install", "-y", "postgresql"],
        "apt-get install postgresql",
        timeout=900,
    )
    bindir = find_bindir()
    if bindir is None:
        raise ServiceError("apt-get installed postgresql but no server binaries were found")
    return bindir


def server_version(bindir: Path) -> str:
    """`postgres --version`, e.g. 'postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)'."""
    return proc.run([str(bindir / "postgres"), "--version"], "postgres --version").strip()


def timescaledb_available(bindir: Path) -> bool:
    """True when the TimescaleDB extension is installed for this server."""
    pg_config = bindir / "pg_config"
    if not pg_config.is_file():
        return False
    share = proc.run([str(pg_config), "--sharedir"], "pg_config --sharedir").strip()
    return (Path(share) / "extension" / "timescaledb.control").is_file()


def server_account() -> RunAs | None:
    """None unless we are root; else the postgres system user the Debian package created."""
    if not proc.is_root():
        return None
    account = RunAs.named("postgres")
    if account is None:
        raise ServiceError(
            "PostgreSQL refuses to run as root and the postgres system user is missing; "
            "install it with: sudo apt-get install -y postgresql"
        )
    return account


def cluster_root(data_dir: Path, run_as: RunAs | None) -> Path:
    """Where the cluster lives: `<data_dir>/postgres`, or, when root and the postgres user
    cannot reach that path (a parent without o+x), a per-data-dir folder in its home."""
    preferred = data_dir / "postgres"
    if run_as is None:
        return preferred
    make_private_dir(preferred, run_as)
    if proc.can_reach(run_as, preferred, "w"):
        return preferred
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    fallback = Path(pwd.getpwnam(run_as.name).pw_dir) / f"ioc-{digest}"
    make_private_dir(fallback, run_as)
    return fallback


CONF_MARK: Final = "# Added by `ioc services up`."
SETTINGS: Final = (
    ("max_connections", "100"),
    ("shared_buffers", "256MB"),
    ("work_mem", "8MB"),
    ("maintenance_work_mem", "128MB"),
    # Ingest writes steadily: rarer checkpoints and compressed full-page images cut the WAL
    # written per event without weakening durability (commits still wait for the flush).
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "15min"),
    ("wal_compression", "on"),
    # The WAL writer flushes every 10 ms instead of 200 ms, on its own core, so a batch's
    # COMMIT finds its WAL mostly on disk already (commit wait 1.3 -> 0.2 us per payment).
    ("wal_writer_delay", "10ms"),
)


def server_options(root: Path, preload: str | None, run_as: RunAs | None) -> ServerOptions:
    """Loopback TCP with passwords, the socket in `<root>/run` when its path fits, and the
    library to preload (TimescaleDB) when there is one."""
    settings = SETTINGS + ((("shared_preload_libraries", f"'{preload}'"),) if preload else ())
    return ServerOptions(
        conf_mark=CONF_MARK,
        settings=settings,
        listen="127.0.0.1",
        socket_dir=socket_dir_for(root),
        auth="scram-sha-256",
        run_as=run_as,
        name=NAME,
    )


def socket_dir_for(root: Path) -> Path | None:
    """`<root>/run` if a socket path inside it fits the kernel limit, else None (TCP only)."""
    run_dir = root / "run"
    return run_dir if socket_fits(run_dir, 65535) else None


def preload_for(bindir: Path) -> str | None:
    """The library the server must preload: TimescaleDB when this installation has it."""
    return "timescaledb" if timescaledb_available(bindir) else None


def cluster_of(entry: dict[str, Any], log: Log) -> PgCluster:
    """The launcher for a recorded entry (its pid included), e.g. in another `ioc` process."""
    data = Path(str(entry["cluster_dir"]))
    bindir = Path(str(entry["bindir"]))
    options = server_options(data.parent, preload_for(bindir), server_account())
    pid = entry.get("pid")
    return PgCluster(
        bindir, data, int(entry["port"]), options, log, pid=pid if isinstance(pid, int) else None
    )


def stop(entry: dict[str, Any], log: Log) -> None:
    """Fast shutdown of the postmaster we started; escalate only if it hangs."""
    pid = entry.get("pid")
    if isinstance(pid, int):
        stop_postmaster(pid, Path(str(entry["cluster_dir"])), log, NAME)


def connect(url: str, dbname: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection (role and database DDL cannot run in a transaction block)."""
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
    if dbname is not None:
        kwargs["dbname"] = dbname
    return psycopg.connect(url, **kwargs)


def provision(entry: dict[str, Any], with_timescaledb: bool) -> str:
    """Databases ioc and ioc_plain, roles ioc_writer/ioc_reader with the recorded passwords,
    TimescaleDB in ioc when installed; returns the server's version line."""
    admin = postgres_url(ADMIN_ROLE, str(entry["admin_password"]), int(entry["port"]))
    with connect(admin, "postgres") as conn:
        for db in (DATABASE, PLAIN_DATABASE):
            _create_database(conn, db)
        # The plain database never gets TimescaleDB, so one server proves both paths.
        _alter_database(conn, PLAIN_DATABASE, "ioc.timescaledb")
        # Tests and replays load history of fixed past dates; retention (sql/011) would drop it
        # under them once it is 400 days old. Deployments keep the default or set their own.
        _alter_database(conn, DATABASE, "ioc.raw_retention")
        _provision_roles(conn, entry)
        version_row = conn.execute("SELECT version()").fetchone()
    ext: tuple[Any, ...] | None = None
    for db in (DATABASE, PLAIN_DATABASE):
        with connect(admin, db) as conn:
            for role in (WRITER_ROLE, READER_ROLE):
                conn.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role))
                )
            if with_timescaledb and db == DATABASE:
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                ext = conn.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
                ).fetchone()
    version = str(version_row[0]).split(" on ")[0] if version_row else "unknown"
    # The log and `ioc services status` say which engine the tests ran on.
    return f"{version} + TimescaleDB {ext[0]}" if with_timescaledb and ext else version


def _alter_database(conn: psycopg.Connection[Any], db: str, setting: str) -> None:
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET {} = 'off'").format(sql.Identifier(db), sql.SQL(setting))
    )


def _provision_roles(conn: psycopg.Connection[Any], entry: dict[str, Any]) -> None:
    for role, key in ((WRITER_ROLE, "writer_password"), (READER_ROLE, "reader_password")):
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = sql.SQL("ALTER") if found else sql.SQL("CREATE")
        conn.execute(
            sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                verb, sql.Identifier(role), sql.Literal(str(entry[key]))
            )
        )
        for db in (DATABASE, PLAIN_DATABASE):
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(db), sql.Identifier(role)
                )
            )
    # Read-only is enforced by grants alone (the migrations'), so that a missing grant
    # shows as "permission denied" in tests; reset what an earlier version set here.
    conn.execute(
        sql.SQL("ALTER ROLE {} RESET default_transaction_read_only").format(
            sql.Identifier(READER_ROLE)
        )
    )


def _create_database(conn: psycopg.Connection[Any], name: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def up(data_dir: Path, previous: dict[str, Any] | None, log: Log) -> tuple[dict[str, Any], bool]:
    """Start (initialising on first use) the project's cluster; returns its state entry and
    whether it was started now (False: it was already running and is reused)."""
    entry = dict(previous or {})
    if reusable(NAME, entry, postgres_markers(entry), log):
        return entry, False
    bindir = ensure_bindir(log)
    run_as = server_account()
    root = cluster_root(data_dir, run_as)
    data = root / "data"
    # Running but not recorded (state file lost): stopped before picking the port, so that
    # the port it held can be kept.
    stop_leftover(data, log, NAME)
    [port] = pick_ports([entry.get("port")], 1)
    cluster = PgCluster(bindir, data, port, server_options(root, preload_for(bindir), run_as), log)
    if not cluster.initialised or not all(entry.get(k) for k in PASSWORD_KEYS):
        for key in PASSWORD_KEYS:
            entry[key] = secrets.token_urlsafe(24)
        cluster.initdb(str(entry["admin_password"]))
        log(f"postgres: initialised cluster {data}")
    else:
        cluster.refresh_conf()
    entry.update(
        pid=None,
        port=port,
        host="127.0.0.1",
        bindir=str(bindir),
        cluster_dir=str(data),
        log=str(cluster.log_path),
        binary_version=server_version(bindir),
    )
    entry["pid"] = cluster.start()
    return entry, True


def finish(entry: dict[str, Any], log: Log, started: float) -> dict[str, Any]:
    """After the entry is recorded (so `down` can stop it): wait, provision, note the version."""
    admin = postgres_url(ADMIN_ROLE, str(entry["admin_password"]), int(entry["port"]))
    cluster_of(entry, log).wait_ready(admin, READY_TIMEOUT_S)
    entry["version"] = provision(entry, timescaledb_available(Path(str(entry["bindir"]))))
    log(
        f"postgres: up on 127.0.0.1:{entry['port']} (pid {entry['pid']}, cluster "
        f"{entry['cluster_dir']}) in {time.monotonic() - started:.1f} s"
    )
    return entry
