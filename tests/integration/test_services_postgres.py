"""The shared PostgreSQL launcher through both of its users, each on a private data dir: the dev
services' cluster (system binaries, passwords, TCP) and the demo's embedded one (wheel binaries,
socket only). Each starts fresh, restarts on its data, stops, and leaves no server behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ioc.app.demo.embedded import READER_ROLE, WRITER_ROLE, EmbeddedPostgres
from ioc.app.services import manager
from ioc.app.services.pgcluster import is_postmaster, postmaster_pid
from ioc.app.services.state import default_cache_dir, load_state, state_path


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir the postgres user can reach when we are root (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="ioc-launcher-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        with_fallback = [root / "embedded-postgres", root / "postgres"]
        for path in with_fallback:
            if path.is_symlink():
                shutil.rmtree(path.resolve(), ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


def _cluster(data_dir: Path) -> Path:
    return Path(str(load_state(data_dir)["postgres"]["cluster_dir"]))


def test_services_cluster_restarts_on_its_port_and_recovers_a_lost_state(data_dir: Path) -> None:
    cache = default_cache_dir(os.environ)
    lines: list[str] = []
    try:
        info, started = manager.up(data_dir, cache, ["postgres"], log=lines.append)
        assert started == ["postgres"] and info.writer_url and info.reader_url
        for url, role in ((info.writer_url, "ioc_writer"), (info.reader_url, "ioc_reader")):
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (role,)
        data = _cluster(data_dir)
        first_pid = postmaster_pid(data)
        manager.down(data_dir, ["postgres"], log=lines.append)
        assert first_pid is not None and not is_postmaster(first_pid, data)

        again, started = manager.up(data_dir, cache, ["postgres"], log=lines.append)
        assert started == ["postgres"]
        assert again.writer_url == info.writer_url  # same port, same passwords
        # The state file is lost while the server runs: the next `up` stops that server
        # instead of starting a second one on the same data.
        running = postmaster_pid(data)
        state_path(data_dir).unlink()
        manager.up(data_dir, cache, ["postgres"], log=lines.append)
        assert running is not None and not is_postmaster(running, data)
        assert any("leftover" in line for line in lines)
    finally:
        manager.down(data_dir, ["postgres"], log=lines.append)
    pid = postmaster_pid(_cluster(data_dir))
    assert pid is None or not is_postmaster(pid, _cluster(data_dir))


def test_embedded_cluster_is_created_then_reused_and_dies_with_stop(data_dir: Path) -> None:
    lines: list[str] = []
    first = EmbeddedPostgres(data_dir, lines.append)
    try:
        first.start()
        assert first.initialised_now and first.alive()
        for role in (WRITER_ROLE, READER_ROLE):
            with psycopg.connect(first.url(role)) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (role,)
        conf = (first.data / "postgresql.conf").read_text()
        assert "listen_addresses = ''" in conf  # socket only
    finally:
        first.stop()
    assert not first.alive()

    second = EmbeddedPostgres(data_dir, lines.append)
    try:
        second.start()
        assert not second.initialised_now
        with psycopg.connect(second.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        pid = second.pid
    finally:
        second.stop()
    assert pid is not None and not is_postmaster(pid, second.data)
