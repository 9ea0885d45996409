"""Topic step's server: a single-node KRaft Kafka broker from Maven Central jars, on loopback."""

from __future__ import annotations

import base64
import importlib.resources
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from ioc.app.services import proc
from ioc.app.services.proc import Log
from ioc.app.services.state import (
    ServiceError,
    kafka_markers,
    pick_ports,
    pid_matches,
    pid_starting,
    reusable,
)

NAME = "kafka"
KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
NODE_ID = 1
HEAP = ("-Xmx512m", "-Xms256m")
READY_TIMEOUT = 60.0
STOP_GRACE = 30.0
COMPLETE_MARKER = ".complete"


def cache_home(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """`<cache>/kafka-<version>`: the pom copy, Maven's log and `libs/`."""
    return cache_dir / f"kafka-{version}"


def broker_jar_name(version: str = KAFKA_VERSION) -> str:
    """The jar whose presence says the broker itself was fetched."""
    return f"kafka_{SCALA_VERSION}-{version}.jar"


def libs_complete(libs: Path, version: str = KAFKA_VERSION) -> bool:
    """True when a previous fetch finished: the marker lists jars that are all still there."""
    try:
        names = (libs / COMPLETE_MARKER).read_text(encoding="utf-8").split()
    except OSError:
        return False
    return broker_jar_name(version) in names and all((libs / n).is_file() for n in names)


def fetch_libs(cache_dir: Path, log: Log, version: str = KAFKA_VERSION) -> Path:
    """The broker's jars, fetched once from Maven Central with `mvn` and reused afterwards."""
    home = cache_home(cache_dir, version)
    libs = home / "libs"
    if libs_complete(libs, version):
        return libs
    mvn = proc.which(
        "mvn", "install Maven (apt-get install -y maven) or run scripts/setup-system.sh"
    )
    home.mkdir(parents=True, exist_ok=True)
    pom = home / "pom.xml"
    source = importlib.resources.files("ioc.app.services").joinpath("kafka-pom.xml")
    pom.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    staging = home / f"libs.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    maven_log = home / "maven.log"
    maven_log.write_text("", encoding="utf-8")
    log(f"kafka: fetching Kafka {version} broker jars from Maven Central into {libs} (once)")
    started = time.monotonic()
    proc.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        "mvn dependency:copy-dependencies",
        cwd=home,
        log_path=maven_log,
        timeout=900,
    )
    names = sorted(p.name for p in staging.glob("*.jar"))
    if broker_jar_name(version) not in names:
        raise ServiceError(f"mvn finished without {broker_jar_name(version)}; see {maven_log}")
    (staging / COMPLETE_MARKER).write_text("\n".join(names) + "\n", encoding="utf-8")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    log(f"kafka: fetched {len(names)} jars in {time.monotonic() - started:.1f} s")
    return libs


def version_of(libs: Path) -> str:
    """The broker version, read from the kafka_2.13-<version>.jar name."""
    for jar in libs.glob(f"kafka_{SCALA_VERSION}-*.jar"):
        found = re.fullmatch(rf"kafka_{re.escape(SCALA_VERSION)}-(\d[\w.-]*)\.jar", jar.name)
        if found:
            return found.group(1)
    return "unknown"


def render_server_properties(
    broker_port: int, controller_port: int, log_dir: Path, host: str = "127.0.0.1"
) -> str:
    """server.properties of a combined broker+controller node listening only on `host`."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # One static voter: the node is its own quorum, and moving the controller to another
        # free port on a later start needs no re-format.
        "controller.quorum.voters": f"{NODE_ID}@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{broker_port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        # Consumer groups of tests and demos should not wait 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    lines = ["# Written by `ioc services up`; rewritten on every start."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def parse_properties(text: str) -> dict[str, str]:
    """key=value lines of a .properties file (comments and blanks skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, _, value = stripped.partition("=")
        out[key.strip()] = value.strip()
    return out


LOG4J2_PROPERTIES = """\
# Written by `ioc services up`: INFO to stdout, which the launcher sends to kafka.log.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
"""


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


def java_cmd(java: str, libs: Path, *args: str) -> list[str]:
    """`java <heap> -cp 'libs/*' <args>` with the broker's own log4j2 configuration."""
    return [java, *HEAP, "-Djava.awt.headless=true", "-cp", f"{libs}/*", *args]


def format_storage(java: str, libs: Path, home: Path, config: Path, log_path: Path) -> str:
    """Format the KRaft log dir with a random cluster id (once; later starts reuse it)."""
    cluster_id = new_cluster_id()
    proc.run(
        java_cmd(
            java,
            libs,
            f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(config),
        ),
        "kafka StorageTool format",
        cwd=home,
        log_path=log_path,
        timeout=120,
    )
    return cluster_id


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def metadata_answers(bootstrap: str, timeout_ms: int = 5000) -> bool:
    """True when the broker answers a metadata request and lists itself as a broker."""
    # Imported here, not at the top: every `ioc` command loads this module (through `ioc
    # services`) and kafka-python takes ~0.2 s to import, which `ioc --help` should not pay.
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap,
            client_id="ioc-services",
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
    except Exception:  # any failure means "not ready yet"
        return False
    try:
        cluster = admin.describe_cluster()
        return any(b.get("broker_id") == NODE_ID for b in cluster.get("brokers", []))
    except Exception:  # any failure means "not ready yet"
        return False
    finally:
        admin.close()


def wait_ready(pid: int, entry: dict[str, Any], log_path: Path, timeout: float) -> None:
    """Until kafka-python gets metadata from the broker; fail early if the JVM exits."""
    deadline = time.monotonic() + timeout
    markers = kafka_markers(entry)
    port = int(entry["port"])
    while time.monotonic() < deadline:
        proc.reap(pid)
        if not pid_matches(pid, markers) and not pid_starting(pid):
            raise ServiceError(f"kafka exited during start-up; see {log_path}")
        if listening(port) and metadata_answers(f"127.0.0.1:{port}"):
            return
        time.sleep(0.5)
    raise ServiceError(f"kafka did not answer metadata within {timeout:.0f} s; see {log_path}")


def launch(java: str, libs: Path, home: Path, config: Path, log_path: Path) -> int:
    """Start the broker detached (own session, output to its log); returns its pid."""
    with log_path.open("ab") as out:
        child = subprocess.Popen(  # noqa: S603 - fixed argv built by this package
            java_cmd(
                java,
                libs,
                f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}",
                "kafka.Kafka",
                str(config),
            ),
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # Popen would warn at exit that its child still runs: that is the point of detaching.
    child.returncode = 0
    return child.pid


def up(
    data_dir: Path, cache_dir: Path, previous: dict[str, Any] | None, log: Log
) -> tuple[dict[str, Any], bool]:
    """Start the broker (fetching jars and formatting storage on first use); returns its state
    entry and whether it was started now (False: already running and reused)."""
    entry = dict(previous or {})
    if reusable(NAME, entry, kafka_markers(entry), log):
        return entry, False
    java = proc.which("java", "install Java 17 (apt-get install -y openjdk-17-jre-headless)")
    libs = fetch_libs(cache_dir, log)
    home = data_dir / "kafka"
    log_dir = home / "data"
    home.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(exist_ok=True)
    config = home / "server.properties"
    log_path = home / "kafka.log"
    broker_port, controller_port = pick_ports([entry.get("port"), entry.get("controller_port")], 2)
    config.write_text(
        render_server_properties(broker_port, controller_port, log_dir), encoding="utf-8"
    )
    (home / "log4j2.properties").write_text(LOG4J2_PROPERTIES, encoding="utf-8")
    if not (log_dir / "meta.properties").is_file():
        entry["cluster_id"] = format_storage(java, libs, home, config, log_path)
        log(f"kafka: formatted KRaft storage {log_dir} (cluster id {entry['cluster_id']})")
    entry.update(
        pid=None,
        port=broker_port,
        controller_port=controller_port,
        host="127.0.0.1",
        config=str(config),
        log=str(log_path),
        libs=str(libs),
        version=version_of(libs),
        started_at=time.time(),
    )
    entry["pid"] = launch(java, libs, home, config, log_path)
    return entry, True


def finish(entry: dict[str, Any], log: Log, started: float) -> dict[str, Any]:
    """After the entry is recorded (so `down` can stop it): wait until the broker answers."""
    wait_ready(int(entry["pid"]), entry, Path(str(entry["log"])), READY_TIMEOUT)
    log(
        f"kafka: {entry['version']} up on 127.0.0.1:{entry['port']} (pid {entry['pid']}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    return entry


def stop(entry: dict[str, Any], log: Log) -> None:
    """SIGTERM the broker we started, SIGKILL after a grace period, and wait until it is gone."""
    pid = entry.get("pid")
    if isinstance(pid, int):
        proc.terminate(pid, kafka_markers(entry), STOP_GRACE, log, NAME)
