"""Service configuration rendering: server.properties, postgresql.conf, jar cache, binaries."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest

from ioc.app.services import kafka, postgres
from ioc.app.services.pgcluster import PgCluster, postmaster_pid, render_conf
from ioc.app.services.state import ServiceError


def test_server_properties_binds_loopback_with_both_ports() -> None:
    text = kafka.render_server_properties(39092, 39093, Path("/d/kafka/data"))
    props = kafka.parse_properties(text)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:39092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:39093"
    assert props["log.dirs"] == "/d/kafka/data"
    assert props["num.partitions"] == "3"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "1", key
    assert "0.0.0.0" not in text  # noqa: S104 - asserting the absence of a wildcard bind
    # Every line is a comment or key=value: nothing the broker would misread.
    for line in text.splitlines():
        assert line.startswith("#") or line.count("=") >= 1


def test_parse_properties_skips_comments_and_blanks() -> None:
    text = "# c\n! also c\n\n a = 1 \nb=x=y\n"
    assert kafka.parse_properties(text) == {"a": "1", "b": "x=y"}


def test_cluster_id_is_16_random_bytes_in_url_safe_base64() -> None:
    ids = {kafka.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cid in ids:
        assert len(cid) == 22 and "=" not in cid
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def _fake_libs(libs: Path, names: list[str]) -> None:
    libs.mkdir(parents=True)
    for name in names:
        (libs / name).write_bytes(b"PK")


def test_libs_are_complete_only_with_marker_and_every_listed_jar(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    jars = [kafka.broker_jar_name(), "kafka-clients-4.1.1.jar", "slf4j-api-1.7.36.jar"]
    _fake_libs(libs, jars)
    assert not kafka.libs_complete(libs)  # no marker: a fetch was interrupted
    (libs / kafka.COMPLETE_MARKER).write_text("\n".join(jars))
    assert kafka.libs_complete(libs)
    (libs / "slf4j-api-1.7.36.jar").unlink()
    assert not kafka.libs_complete(libs)


def test_libs_without_the_broker_jar_are_incomplete(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    _fake_libs(libs, ["kafka-clients-4.1.1.jar"])
    (libs / kafka.COMPLETE_MARKER).write_text("kafka-clients-4.1.1.jar\n")
    assert not kafka.libs_complete(libs)


def test_version_comes_from_the_broker_jar_name(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    _fake_libs(
        libs, ["kafka-clients-9.9.9.jar", "kafka_2.13-3.9.2.jar", "scala-library-2.13.16.jar"]
    )
    assert kafka.version_of(libs) == "3.9.2"
    assert kafka.version_of(tmp_path) == "unknown"


def test_fetched_pom_is_shipped_and_names_the_broker_artifact() -> None:
    import importlib.resources

    pom = importlib.resources.files("ioc.app.services").joinpath("kafka-pom.xml").read_text()
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert f"<kafka.version>{kafka.KAFKA_VERSION}</kafka.version>" in pom


def test_postgres_conf_listens_on_loopback_only() -> None:
    conf = render_conf(54321, postgres.server_options(Path("/d/postgres"), None, None))
    assert conf.startswith(postgres.CONF_MARK + "\n")
    assert "listen_addresses = '127.0.0.1'" in conf
    assert "port = 54321" in conf
    assert "unix_socket_directories = '/d/postgres/run'" in conf
    assert "shared_preload_libraries" not in conf
    long_root = Path("/" + "x" * 120)
    with_ts = render_conf(1, postgres.server_options(long_root, "timescaledb", None))
    assert "shared_preload_libraries = 'timescaledb'" in with_ts
    assert "unix_socket_directories = ''" in with_ts


def test_socket_dir_is_dropped_when_the_path_is_too_long(tmp_path: Path) -> None:
    assert postgres.socket_dir_for(Path("/d/postgres")) == Path("/d/postgres/run")
    assert postgres.socket_dir_for(Path("/" + "x" * 120)) is None


def _cluster(data: Path, port: int, socket_dir: Path | None) -> PgCluster:
    options = postgres.server_options(data.parent, None, None)
    options = dataclasses.replace(options, socket_dir=socket_dir)
    return PgCluster(Path("/nonexistent/bin"), data, port, options, print)


def test_refresh_conf_rewrites_only_our_block(tmp_path: Path) -> None:
    conf = tmp_path / "postgresql.conf"
    old_block = render_conf(40000, postgres.server_options(tmp_path, None, None))
    old_block = old_block.replace("wal_writer_delay", "#gone")
    conf.write_text("port = 5432\n#port = 1\n\n" + old_block)
    _cluster(tmp_path, 41000, tmp_path / "run").refresh_conf()
    text = conf.read_text()
    assert text.startswith("port = 5432\n#port = 1\n")
    assert "port = 41000" in text and "port = 40000" not in text
    # A cluster made by an older version gets this version's settings on its next start.
    assert "\nwal_writer_delay = 10ms" in text and "#gone" not in text
    assert f"unix_socket_directories = '{tmp_path / 'run'}'" in text
    assert text.count(postgres.CONF_MARK) == 1


def test_refresh_conf_refuses_a_foreign_config(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("port = 5432\n")
    with pytest.raises(ServiceError, match="delete"):
        _cluster(tmp_path, 41000, None).refresh_conf()


def test_find_bindir_picks_the_newest_complete_server(tmp_path: Path) -> None:
    for version, tools in (("13", postgres.TOOLS), ("15", postgres.TOOLS), ("16", ("psql",))):
        bindir = tmp_path / version / "bin"
        bindir.mkdir(parents=True)
        for tool in tools:
            (bindir / tool).write_text("")
    assert postgres.find_bindir(tmp_path) == tmp_path / "15" / "bin"
    assert postgres.find_bindir(tmp_path / "none") is None


def test_postmaster_pid_reads_the_first_line(tmp_path: Path) -> None:
    assert postmaster_pid(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("1234\n/d\n1700000000\n5432\n")
    assert postmaster_pid(tmp_path) == 1234
    (tmp_path / "postmaster.pid").write_text("garbage\n")
    assert postmaster_pid(tmp_path) is None
