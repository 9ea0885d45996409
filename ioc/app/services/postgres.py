"""Table step's server: a PostgreSQL cluster owned by the project, on a free loopback port."""

from __future__ import annotations

import hashlib
import pwd
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from ioc.app.services import proc
from ioc.app.services.proc import Log
from ioc.app.services.state import (
    ADMIN_ROLE,
    DATABASE,
    PLAIN_DATABASE,
    READER_ROLE,
    WRITER_ROLE,
    ServiceError,
    pick_ports,
    pid_matches,
    postgres_markers,
    postgres_url,
)

NAME = "postgres"
PG_ROOT = Path("/usr/lib/postgresql")
TOOLS = ("initdb", "pg_ctl", "postgres")
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes with the NUL).
MAX_SOCKET_PATH = 107


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


def cluster_root(data_dir: Path) -> Path:
    """Where the cluster lives: `<data_dir>/postgres`, or, when root and the postgres user
    cannot reach that path (a parent without o+x), a per-data-dir folder in its home."""
    preferred = data_dir / "postgres"
    if not proc.is_root():
        return preferred
    _make_postgres_dir(preferred)
    check = proc.as_postgres([proc.which("test", "install coreutils"), "-w", str(preferred)])
    try:
        proc.run(check, "reachability check")
        return preferred
    except ServiceError:
        digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
        fallback = Path(pwd.getpwnam("postgres").pw_dir) / f"ioc-{digest}"
        _make_postgres_dir(fallback)
        return fallback


def _own_log(path: Path) -> Path:
    """Create the log file owned by the server's user: the server appends to it, not just us."""
    path.touch(mode=0o640, exist_ok=True)
    if proc.is_root():
        shutil.chown(path, user="postgres", group="postgres")
    return path


def _make_postgres_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if proc.is_root():
        shutil.chown(path, user="postgres", group="postgres")
        path.chmod(0o700)


CONF_MARK: Final = "# Added by `ioc services up`."


def render_conf(port: int, socket_dir: Path | None, preload: str | None) -> str:
    """Settings appended to postgresql.conf: loopback only, small memory, own socket dir."""
    sockets = str(socket_dir) if socket_dir is not None else ""
    lines = [
        CONF_MARK,
        "listen_addresses = '127.0.0.1'",
        f"port = {port}",
        f"unix_socket_directories = '{sockets}'",
        "max_connections = 100",
        "shared_buffers = 256MB",
        "work_mem = 8MB",
        "maintenance_work_mem = 128MB",
        # Ingest writes steadily: rarer checkpoints and compressed full-page images cut the WAL
        # written per event without weakening durability (commits still wait for the flush).
        "max_wal_size = 4GB",
        "checkpoint_timeout = 15min",
        "wal_compression = on",
        # The WAL writer flushes every 10 ms instead of 200 ms, on its own core, so a batch's
        # COMMIT finds its WAL mostly on disk already (commit wait 1.3 -> 0.2 us per payment).
        "wal_writer_delay = 10ms",
        "log_line_prefix = '%m [%p] %q%u@%d '",
    ]
    if preload:
        lines.append(f"shared_preload_libraries = '{preload}'")
    return "\n".join(lines) + "\n"


def socket_dir_for(root: Path) -> Path | None:
    """`<root>/run` if a socket path inside it fits the kernel limit, else None (TCP only)."""
    run_dir = root / "run"
    return run_dir if len(str(run_dir / ".s.PGSQL.65535")) <= MAX_SOCKET_PATH else None


def initdb(bindir: Path, root: Path, password: str, port: int, log: Log) -> Path:
    """A fresh cluster in `<root>/data` with scram-sha-256 auth and superuser ioc_admin."""
    data = root / "data"
    if data.exists():
        shutil.rmtree(data)
    socket_dir = socket_dir_for(root)
    if socket_dir is not None:
        _make_postgres_dir(socket_dir)
    pwfile = root / "initdb.pw"
    pwfile.write_text(password + "\n", encoding="utf-8")
    pwfile.chmod(0o600)
    if proc.is_root():
        shutil.chown(pwfile, user="postgres", group="postgres")
    log_path = root / "initdb.log"
    try:
        proc.run(
            proc.as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    ADMIN_ROLE,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
            ),
            "initdb",
            cwd=root,
            log_path=log_path,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    conf = data / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as fh:
        fh.write("\n" + render_conf(port, socket_dir, preload_for(bindir)))
    log(f"postgres: initialised cluster {data}")
    return data


def preload_for(bindir: Path) -> str | None:
    """The library the server must preload: TimescaleDB when this installation has it."""
    return "timescaledb" if timescaledb_available(bindir) else None


def refresh_conf(data: Path, port: int, socket_dir: Path | None, preload: str | None) -> None:
    """Rewrite the block we appended (new port, settings of this version), keep the rest."""
    conf = data / "postgresql.conf"
    text = conf.read_text(encoding="utf-8")
    head, sep, _ = text.rpartition(CONF_MARK)
    if not sep:
        raise ServiceError(f"{conf} lacks the block `ioc services up` writes; delete {data}")
    conf.write_text(head + render_conf(port, socket_dir, preload), encoding="utf-8")


def postmaster_pid(data: Path) -> int | None:
    """The pid in postmaster.pid, or None when there is no such file."""
    try:
        first = (data / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        return int(first.strip())
    except (OSError, ValueError):
        return None


def start(bindir: Path, root: Path, data: Path, log: Log) -> int:
    """pg_ctl start and wait; returns the postmaster pid."""
    log_path = _own_log(root / "postgres.log")
    stale = data / "postmaster.pid"
    pid = postmaster_pid(data)
    if pid is not None and not pid_matches(pid, postgres_markers({"cluster_dir": data})):
        log(f"postgres: removing stale {stale} (pid {pid} is not our postmaster)")
        stale.unlink(missing_ok=True)
    proc.run(
        proc.as_postgres(
            [
                str(bindir / "pg_ctl"),
                "start",
                "-D",
                str(data),
                "-l",
                str(log_path),
                "-w",
                "-t",
                "60",
            ]
        ),
        "pg_ctl start",
        cwd=root,
        log_path=log_path,
        timeout=90,
    )
    pid = postmaster_pid(data)
    if pid is None:
        raise ServiceError(f"pg_ctl start succeeded but {stale} is missing; see {log_path}")
    return pid


def stop(entry: dict[str, Any], log: Log) -> None:
    """pg_ctl stop -m fast for the postmaster we started; escalate only if it hangs."""
    pid = entry.get("pid")
    markers = postgres_markers(entry)
    if not isinstance(pid, int) or not pid_matches(pid, markers):
        return
    data = Path(str(entry["cluster_dir"]))
    bindir = Path(str(entry["bindir"]))
    root = data.parent
    try:
        proc.run(
            proc.as_postgres(
                [str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60"]
            ),
            "pg_ctl stop",
            cwd=root,
            log_path=root / "postgres.log",
            timeout=90,
        )
    except ServiceError as exc:
        log(f"postgres: {exc}; terminating pid {pid}")
    proc.terminate(pid, markers, 20.0, log, NAME)
    if not proc.wait_gone(pid, markers, 5.0):
        raise ServiceError(f"postgres pid {pid} is still running; see {root / 'postgres.log'}")


def connect(url: str, dbname: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit connection (role and database DDL cannot run in a transaction block)."""
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 10}
    if dbname is not None:
        kwargs["dbname"] = dbname
    return psycopg.connect(url, **kwargs)


def wait_accepting(url: str, log_path: Path, timeout: float = 30.0) -> None:
    """Until the admin role can log in over TCP (pg_ctl -w already waited for startup)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(url, "postgres") as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"postgres does not accept connections: {proc.last_line(str(exc))}; "
                    f"see {log_path}"
                ) from None
            time.sleep(0.3)


def provision(entry: dict[str, Any], with_timescaledb: bool) -> str:
    """Database ioc, roles ioc_writer/ioc_reader with the recorded passwords; SELECT version()."""
    port = int(entry["port"])
    admin = postgres_url(ADMIN_ROLE, str(entry["admin_password"]), port)
    ext: tuple[Any, ...] | None = None
    with connect(admin, "postgres") as conn:
        for db in (DATABASE, PLAIN_DATABASE):
            _create_database(conn, db)
        # The plain database never gets TimescaleDB, so one server proves both paths.
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET ioc.timescaledb = 'off'").format(
                sql.Identifier(PLAIN_DATABASE)
            )
        )
        # Tests and replays load history of fixed past dates; retention (sql/011) would drop it
        # under them once it is 400 days old. Deployments keep the default or set their own.
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET ioc.raw_retention = 'off'").format(
                sql.Identifier(DATABASE)
            )
        )
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
        version_row = conn.execute("SELECT version()").fetchone()
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


def _create_database(conn: psycopg.Connection[Any], name: str) -> None:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def up(data_dir: Path, previous: dict[str, Any] | None, log: Log) -> tuple[dict[str, Any], bool]:
    """Start (initialising on first use) the project's cluster; returns its state entry and
    whether it was started now (False: it was already running and is reused)."""
    entry = dict(previous or {})
    if entry and pid_matches(entry.get("pid"), postgres_markers(entry)):
        log(f"postgres: already running (pid {entry['pid']}, port {entry['port']})")
        return entry, False
    if entry.get("pid") is not None:
        log(f"postgres: recorded pid {entry['pid']} is gone or not ours; starting afresh")
    bindir = ensure_bindir(log)
    root = cluster_root(data_dir)
    data = root / "data"
    orphan = postmaster_pid(data)
    if orphan is not None and pid_matches(orphan, postgres_markers({"cluster_dir": data})):
        # Running but not recorded (state file lost): stop it so it restarts with known state.
        log(f"postgres: stopping unrecorded postmaster pid {orphan} of {data}")
        stop({"pid": orphan, "cluster_dir": str(data), "bindir": str(bindir)}, log)
    [port] = pick_ports([entry.get("port")], 1)
    keys = ("admin_password", "writer_password", "reader_password")
    fresh = not (data / "PG_VERSION").is_file() or not all(entry.get(k) for k in keys)
    if fresh:
        for key in keys:
            entry[key] = secrets.token_urlsafe(24)
        initdb(bindir, root, str(entry["admin_password"]), port, log)
    else:
        refresh_conf(data, port, socket_dir_for(root), preload_for(bindir))
    entry.update(
        pid=None,
        port=port,
        host="127.0.0.1",
        bindir=str(bindir),
        cluster_dir=str(data),
        log=str(root / "postgres.log"),
        binary_version=server_version(bindir),
    )
    entry["pid"] = start(bindir, root, data, log)
    return entry, True


def finish(entry: dict[str, Any], log: Log, started: float) -> dict[str, Any]:
    """After the entry is recorded (so `down` can stop it): wait, provision, note the version."""
    admin = postgres_url(ADMIN_ROLE, str(entry["admin_password"]), int(entry["port"]))
    wait_accepting(admin, Path(str(entry["log"])))
    entry["version"] = provision(entry, timescaledb_available(Path(str(entry["bindir"]))))
    log(
        f"postgres: up on 127.0.0.1:{entry['port']} (pid {entry['pid']}, cluster "
        f"{entry['cluster_dir']}) in {time.monotonic() - started:.1f} s"
    )
    return entry
