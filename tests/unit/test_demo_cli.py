"""`ioc demo` entry checks: arguments, data directory choice, port taken, directory not
writable, one demo per directory - each a single clear line."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.app.cli import main
from ioc.app.commands.demo import resolve_data_dir
from ioc.app.demo.checks import DataDirLock, DemoError, check_data_dir, check_port, redact
from ioc.app.demo.embedded import PORT, server_options, socket_dir_for
from ioc.app.services.pgcluster import render_conf
from ioc.app.settings import Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    import os

    for key in list(os.environ):
        if key.startswith("IOC_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield tmp_path
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_data_dir_flag_then_ioc_data_dir_then_user_data_dir(clean_env: Path) -> None:
    assert resolve_data_dir(Path("x/y"), Settings()) == Path("x/y").absolute()
    assert resolve_data_dir(None, Settings(data_dir=Path("/srv/ioc"))) == Path("/srv/ioc")
    # The services' default `.ioc` is not the demo's: the user's data directory is.
    assert resolve_data_dir(None, Settings()) == clean_env / "xdg" / "ioc" / "demo"


def test_port_in_use_is_one_line_naming_the_fix(listening: int) -> None:
    with pytest.raises(DemoError) as info:
        check_port("127.0.0.1", listening)
    text = str(info.value)
    assert f"port {listening}" in text and "--port" in text and "\n" not in text


def test_command_reports_a_taken_port_in_one_line_and_starts_nothing(
    clean_env: Path, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data = clean_env / "data"
    code = main(["demo", "--port", str(listening), "--data-dir", str(data)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and "already in use" in err
    assert not (data / "embedded-postgres").exists()


def test_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DemoError) as info:
        check_data_dir(blocker / "demo")
    text = str(info.value)
    assert "not writable" in text and "--data-dir" in text and "\n" not in text


def test_one_demo_per_data_dir(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(DemoError, match="another ioc demo"):
            DataDirLock(tmp_path).acquire()
    finally:
        first.release()
    again = DataDirLock(tmp_path)
    again.acquire()
    again.release()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "0"], "out of range"),
        (["--days", "-2"], "positive"),
        (["--speed", "fast"], "not a number"),
        (["--days", "90"], "at most 60"),
    ],
)
def test_bad_arguments_are_one_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", *args])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2
    assert needle in err and err.count("\n") == 0


def test_passwords_never_reach_the_terminal_or_the_state_key() -> None:
    text = redact("postgresql://ioc:s3cret@db.example:5433/ioc")
    assert "s3cret" not in text and "db.example" in text and "5433" in text


def test_server_listens_on_a_private_socket_only(tmp_path: Path) -> None:
    conf = render_conf(PORT, server_options(tmp_path / "run", None))
    assert "listen_addresses = ''" in conf
    assert "unix_socket_permissions = 0700" in conf
    assert f"unix_socket_directories = '{tmp_path / 'run'}'" in conf
    long_root = tmp_path / ("x" * 120)
    assert len(str(socket_dir_for(long_root) / ".s.PGSQL.5432")) <= 107
    assert socket_dir_for(tmp_path) == tmp_path / "run"
