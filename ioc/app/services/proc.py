"""Process helpers for the topic and table steps: run tools, run as the server's user, stop pids."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ioc.app.services.state import ServiceError, pid_matches

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account a server runs as when we are root (PostgreSQL refuses root)."""

    name: str
    uid: int
    gid: int

    @classmethod
    def named(cls, name: str) -> RunAs | None:
        """The account `name`, or None when the system has no such user."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return cls(name, entry.pw_uid, entry.pw_gid)

    def popen_args(self) -> dict[str, Any]:
        """Popen arguments that drop to this account, with its groups as login would give."""
        groups = os.getgrouplist(self.name, self.gid)
        return {"user": self.uid, "group": self.gid, "extra_groups": groups}


def as_user(run_as: RunAs | None) -> dict[str, Any]:
    """Popen arguments that run the child as `run_as` (nothing when we are not root)."""
    return run_as.popen_args() if run_as is not None else {}


def which(name: str, hint: str) -> str:
    """The full path of an executable, or ServiceError saying what to install."""
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name} not found on PATH; {hint}")
    return found


def last_line(text: str) -> str:
    """The last non-empty line of a tool's output, for a one-line error message."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run(
    cmd: Sequence[str],
    what: str,
    *,
    cwd: Path | None = None,
    log_path: Path | None = None,
    timeout: float = 300.0,
    run_as: RunAs | None = None,
) -> str:
    """Run a tool to completion; on failure raise ServiceError naming it and where its log is.

    Output goes to `log_path` when given (appended, so earlier runs stay readable), else it is
    captured and its last line quoted in the error. With `run_as` it runs as that account.
    """
    try:
        with contextlib.ExitStack() as stack:
            out: IO[bytes] | int = subprocess.PIPE
            if log_path is not None:
                out = stack.enter_context(log_path.open("ab"))
            done = subprocess.run(  # noqa: S603 - fixed argv built by this package
                list(cmd),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                **as_user(run_as),
            )
        text = (done.stdout or b"").decode("utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        where = f"; see {log_path}" if log_path else ""
        raise ServiceError(f"{what} timed out after {timeout:.0f} s{where}") from None
    except OSError as exc:
        raise ServiceError(f"{what} could not run: {exc.strerror or exc}") from None
    if done.returncode != 0:
        if log_path is not None:
            tail = log_path.read_text(encoding="utf-8", errors="replace")
            raise ServiceError(
                f"{what} failed (exit {done.returncode}): {last_line(tail)}; see {log_path}"
            )
        raise ServiceError(f"{what} failed (exit {done.returncode}): {last_line(text)}")
    return text


def is_root() -> bool:
    """PostgreSQL refuses to run as root, so root runs its tools as the postgres user."""
    return os.geteuid() == 0


def can_reach(run_as: RunAs | None, path: Path, test: str) -> bool:
    """Whether `run_as` passes `test -<test> path`, e.g. "w" (we, or root, reach everything)."""
    if run_as is None:
        return True
    tool = shutil.which("test") or "/usr/bin/test"
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv
            [tool, f"-{test}", str(path)], check=False, timeout=10, **as_user(run_as)
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child, so it does not linger as a zombie."""
    # A pid started by another `ioc` process is not our child; init reaps that one.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, markers: Sequence[str], timeout: float) -> bool:
    """Wait until the process we started is gone; True if it went within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        reap(pid)
        if not pid_matches(pid, markers):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def terminate(pid: int, markers: Sequence[str], grace: float, log: Log, name: str) -> None:
    """SIGTERM the process group we started, then SIGKILL after `grace` seconds; wait for it.

    Only a pid whose command line still matches `markers` is signalled, so a pid reused by
    another program after a crash is never touched.
    """
    if not pid_matches(pid, markers):
        return
    _signal(pid, signal.SIGTERM)
    if wait_gone(pid, markers, grace):
        return
    log(f"{name}: pid {pid} ignored SIGTERM for {grace:.0f} s; sending SIGKILL")
    _signal(pid, signal.SIGKILL)
    if not wait_gone(pid, markers, 15.0):
        raise ServiceError(f"{name}: pid {pid} survived SIGKILL")


def _signal(pid: int, sig: signal.Signals) -> None:
    # The service leads its own session (started with a new session), so its group id is
    # its pid; signal the group so that no helper child is left behind.
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass
