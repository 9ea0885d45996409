"""Service state: the state file, stale pid detection, ports and connection URLs (no services)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from ioc.app.services import manager, proc
from ioc.app.services.state import (
    SERVICE_PORTS,
    ConnectionInfo,
    ServiceError,
    connection_info,
    default_cache_dir,
    ephemeral_low,
    free_port,
    load_state,
    pick_ports,
    pid_matches,
    pid_starting,
    port_is_free,
    postgres_url,
    read_connection_info,
    save_state,
)


def _fake_proc(root: Path, pid: int, argv: list[str], state: str = "S") -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0" if argv else b"")
    # The command name may hold spaces and ')' - the state letter is after the last ')'.
    (d / "stat").write_text(f"{pid} (java) x)) {state} 1 {pid} {pid} 0 -1\n")


PG_ENTRY = {
    "pid": 4242,
    "port": 54321,
    "cluster_dir": "/srv/ioc/postgres/data",
    "admin_password": "a-pw",
    "writer_password": "w-pw",
    "reader_password": "r-pw",
}
KAFKA_CONFIG = "/srv/ioc/kafka/server.properties"
KAFKA_ENTRY = {"pid": 4343, "port": 39092, "config": KAFKA_CONFIG}
PG_ARGV = ["/usr/lib/postgresql/15/bin/postgres", "-D", "/srv/ioc/postgres/data"]
KAFKA_ARGV = ["/usr/bin/java", "-Xmx512m", "-cp", "libs/*", "kafka.Kafka", KAFKA_CONFIG]


def test_missing_state_file_reads_as_nothing_up(tmp_path: Path) -> None:
    assert load_state(tmp_path) == {}
    assert read_connection_info(tmp_path) == ConnectionInfo(None, None, None, None)


def test_state_file_is_private_and_round_trips(tmp_path: Path) -> None:
    state = {"postgres": dict(PG_ENTRY), "kafka": dict(KAFKA_ENTRY)}
    save_state(tmp_path / "d", state)
    path = tmp_path / "d" / "services.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == state
    assert load_state(tmp_path / "d") == state
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["services.json"]  # no temp left


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"postgres": 3}'])
def test_corrupt_state_file_is_one_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "services.json").write_text(text)
    with pytest.raises(ServiceError, match=r"services\.json"):
        load_state(tmp_path)
    assert read_connection_info(tmp_path) == ConnectionInfo(None, None, None, None)


def test_connection_info_when_our_processes_run(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 4242, PG_ARGV)
    _fake_proc(tmp_path, 4343, KAFKA_ARGV)
    info = connection_info({"postgres": PG_ENTRY, "kafka": KAFKA_ENTRY}, proc=tmp_path)
    assert info.admin_url == "postgresql://ioc_admin:a-pw@127.0.0.1:54321/ioc"
    assert info.writer_url == "postgresql://ioc_writer:w-pw@127.0.0.1:54321/ioc"
    assert info.reader_url == "postgresql://ioc_reader:r-pw@127.0.0.1:54321/ioc"
    assert info.kafka_bootstrap == "127.0.0.1:39092"


def test_stale_pid_reused_by_another_program_counts_as_down(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 4242, ["/usr/bin/vim", "notes.txt"])
    _fake_proc(tmp_path, 4343, ["/usr/bin/java", "kafka.Kafka", "/elsewhere/server.properties"])
    info = connection_info({"postgres": PG_ENTRY, "kafka": KAFKA_ENTRY}, proc=tmp_path)
    assert info == ConnectionInfo(None, None, None, None)


def test_dead_and_zombie_pids_count_as_down(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 4343, KAFKA_ARGV, state="Z")  # 4242 does not exist at all
    assert not pid_matches(4242, ["postgres"], proc=tmp_path)
    assert not pid_matches(4343, ["kafka.Kafka"], proc=tmp_path)
    info = connection_info({"postgres": PG_ENTRY, "kafka": KAFKA_ENTRY}, proc=tmp_path)
    assert info == ConnectionInfo(None, None, None, None)


def test_a_process_without_a_command_line_yet_is_starting(tmp_path: Path) -> None:
    _fake_proc(tmp_path, 4343, [])  # just exec'd: the kernel shows no arguments yet
    _fake_proc(tmp_path, 4444, [], state="Z")
    _fake_proc(tmp_path, 4545, KAFKA_ARGV)
    assert not pid_matches(4343, ["kafka.Kafka"], proc=tmp_path)
    assert pid_starting(4343, proc=tmp_path)
    assert not pid_starting(4444, proc=tmp_path)  # a zombie is gone, not starting
    assert not pid_starting(4545, proc=tmp_path)  # a full command line is judged by markers
    assert not pid_starting(4646, proc=tmp_path)


@pytest.mark.parametrize("pid", [None, 0, -1, True, "4242", 4.0])
def test_pid_must_be_a_positive_int(tmp_path: Path, pid: object) -> None:
    _fake_proc(tmp_path, 4242, PG_ARGV)
    assert not pid_matches(pid, ["postgres"], proc=tmp_path)
    assert pid_matches(4242, ["postgres"], proc=tmp_path)


def test_pid_of_this_process_matches_its_real_cmdline() -> None:
    assert pid_matches(os.getpid(), [Path(sys.executable).name.split(".")[0][:6]])
    assert not pid_matches(os.getpid(), ["kafka.Kafka-not-this-one"])


def test_a_real_dead_pid_is_stale() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_matches(child.pid, ["python"])


def test_terminate_stops_only_a_matching_process() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "ioc-test-marker"],
        start_new_session=True,
    )
    try:
        proc.terminate(child.pid, ["not-this-process"], 1.0, print, "test")
        assert child.poll() is None  # a pid whose command line does not match is left alone
        proc.terminate(child.pid, ["ioc-test-marker"], 5.0, print, "test")
        assert child.wait(timeout=5) is not None
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_url_quotes_passwords_with_url_syntax() -> None:
    password = "p@ss:w/rd?#%"  # noqa: S105 - a made-up value with URL syntax in it
    url = postgres_url("ioc_writer", password, 5432)
    parts = urlsplit(url)
    assert unquote(parts.password or "") == password
    assert (parts.username, parts.hostname, parts.port, parts.path) == (
        "ioc_writer",
        "127.0.0.1",
        5432,
        "/ioc",
    )


def test_free_ports_stay_out_of_the_ephemeral_range(tmp_path: Path) -> None:
    # Outgoing connections take ephemeral ports; a service port from there could be stolen.
    ports = {free_port() for _ in range(50)}
    assert all(SERVICE_PORTS[0] <= p < min(SERVICE_PORTS[1], ephemeral_low()) for p in ports)
    assert len(ports) > 40
    (tmp_path / "range").write_text("15000\t60999\n")
    assert ephemeral_low(tmp_path / "range") == 15000
    assert ephemeral_low(tmp_path / "missing") == 32_768


def test_free_port_is_bindable_and_a_listening_port_is_not() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not port_is_free(port)
    assert port_is_free(port)
    assert not port_is_free(0) and not port_is_free(70000) and not port_is_free(None)


def test_pick_ports_reuses_free_previous_ports_else_picks_distinct_new_ones() -> None:
    a, b = free_port(), free_port()
    if a == b:
        b = free_port()
    assert pick_ports([a, b], 2) == [a, b]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", a))
        listener.listen()
        fresh = pick_ports([a, b], 2)
        assert a not in fresh and len(set(fresh)) == 2
    assert len(set(pick_ports([None, None], 2))) == 2
    assert len(set(pick_ports([a, a], 2))) == 2


def test_cache_dir_follows_xdg_then_home() -> None:
    assert default_cache_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path("/x/cache/ioc")
    assert default_cache_dir({"XDG_CACHE_HOME": " ", "HOME": "/h"}) == Path("/h/.cache/ioc")


def test_select_keeps_start_order_and_rejects_unknown_names() -> None:
    assert manager.select(None) == ("postgres", "kafka")
    assert manager.select(["kafka", "postgres"]) == ("postgres", "kafka")
    assert manager.select(["kafka"]) == ("kafka",)
    with pytest.raises(ServiceError, match="unknown service 'redis'"):
        manager.select(["redis"])


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leases_of_dead_sessions_are_dropped(tmp_path: Path) -> None:
    mine = manager.acquire_lease(tmp_path, print)
    dead = tmp_path / manager.LEASE_DIR / f"{_dead_pid()}-abcd"
    dead.write_text("x")
    junk = tmp_path / manager.LEASE_DIR / "not-a-pid"
    junk.write_text("x")
    assert manager.live_leases(tmp_path) == [mine]
    assert not dead.exists() and not junk.exists()


def test_last_session_out_stops_only_session_started_services(tmp_path: Path) -> None:
    gone = _dead_pid()  # a recorded pid that is already gone: nothing is signalled
    save_state(
        tmp_path,
        {
            "postgres": {**PG_ENTRY, "pid": gone, "owner": "session"},
            "kafka": {**KAFKA_ENTRY, "pid": gone, "owner": "cli"},
        },
    )
    first = manager.acquire_lease(tmp_path, print)
    second = manager.acquire_lease(tmp_path, print)
    assert first != second
    assert manager.release_lease(tmp_path, first, print) == []  # another session still runs
    assert load_state(tmp_path)["postgres"]["pid"] == gone
    assert manager.release_lease(tmp_path, second, print) == ["postgres"]
    state = load_state(tmp_path)
    assert state["postgres"]["pid"] is None
    assert state["kafka"]["pid"] == gone  # started from the CLI: left alone
