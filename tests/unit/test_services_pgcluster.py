"""The shared PostgreSQL launcher's stopping rules, on stand-in processes: fast shutdown first,
escalation only when it hangs, and never a signal to a pid that is not this cluster's."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.app.services.pgcluster import (
    ServerOptions,
    is_postmaster,
    render_conf,
    socket_fits,
    stop_leftover,
    stop_postmaster,
)

# Exits 0 on SIGINT (as a postmaster's fast shutdown does); with "ignore", only SIGQUIT ends it.
_FAKE = """
import signal, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def _fake_postmaster(data: Path, mode: str = "obey") -> subprocess.Popen[str]:
    """A process whose command line reads like `postgres -D <data>`."""
    child = subprocess.Popen(
        [sys.executable, "-c", _FAKE, mode, "postgres", "-D", str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    path.mkdir()
    yield path


def test_fast_shutdown_is_enough_for_a_server_that_obeys(data: Path) -> None:
    child = _fake_postmaster(data)
    lines: list[str] = []
    try:
        assert is_postmaster(child.pid, data)
        stop_postmaster(child.pid, data, lines.append, "test", timeout=10)
        # The launcher reaped it (so Popen cannot see the status): gone, with no escalation.
        assert not is_postmaster(child.pid, data)
        assert lines == []
    finally:
        child.kill()


def test_a_hanging_server_gets_sigquit(data: Path) -> None:
    child = _fake_postmaster(data, "ignore")
    lines: list[str] = []
    try:
        stop_postmaster(child.pid, data, lines.append, "test", timeout=0.5)
        assert not is_postmaster(child.pid, data)
        # One escalation (after SIGINT); SIGQUIT ended it, so SIGKILL was not needed.
        assert len(lines) == 1 and "after SIGINT" in lines[0]
    finally:
        child.kill()


def test_another_clusters_server_is_left_alone(data: Path, tmp_path: Path) -> None:
    child = _fake_postmaster(tmp_path / "other")
    try:
        stop_postmaster(child.pid, data, print, "test", timeout=0.5)
        assert child.poll() is None
        (data / "postmaster.pid").write_text(f"{child.pid}\n{data}\n")
        lines: list[str] = []
        stop_leftover(data, lines.append, "test")
        # Not ours: only the stale lock file goes, so that our server can start.
        assert child.poll() is None and not (data / "postmaster.pid").exists()
        assert "stale" in lines[0]
    finally:
        child.kill()
        child.wait()


def test_a_leftover_server_of_this_cluster_is_stopped(data: Path) -> None:
    child = _fake_postmaster(data)
    try:
        (data / "postmaster.pid").write_text(f"{child.pid}\n{data}\n")
        lines: list[str] = []
        stop_leftover(data, lines.append, "test")
        assert not is_postmaster(child.pid, data)
        assert "leftover" in lines[0]
    finally:
        child.kill()


def test_conf_block_starts_with_the_mark_and_lists_settings_in_order() -> None:
    options = ServerOptions(
        conf_mark="# mark", settings=(("a", "1"), ("b", "'x'")), listen="", socket_dir=None
    )
    lines = render_conf(7, options).splitlines()
    assert lines[:4] == [
        "# mark",
        "listen_addresses = ''",
        "port = 7",
        "unix_socket_directories = ''",
    ]
    assert lines[4:6] == ["a = 1", "b = 'x'"]


def test_socket_path_limit() -> None:
    assert socket_fits(Path("/run/x"), 5432)
    assert not socket_fits(Path("/" + "x" * 100), 5432)
