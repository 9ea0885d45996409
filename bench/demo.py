"""Benchmark of the one-command demo (`make demo`): seconds from the command to the dashboard's
URL and to the first coloured map in headless Chromium, the history's load time, and the demo's
total memory (its processes and the embedded PostgreSQL's), on a clean home directory.

Run: python -m bench.demo (writes bench/results/demo.json). The same helpers drive
tests/integration/test_demo.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import describe

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "demo.json"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Ward fills that mean "no colour yet": layouts.kpis NO_DATA and STALE.
UNCOLOURED = {"#3a4150", "#5c6270"}
AQI_TILE = """[id='{"kpi":"aqi","type":"tile"}']"""
URL_RE = re.compile(r"dashboard ready at (http://\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def demo_env(home: Path, port: int) -> dict[str, str]:
    """The caller's environment without IOC_* or XDG data settings: a newcomer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "XDG_")) and k != "CI"}
    env.update(HOME=str(home), IOC_DASHBOARD_PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def default_data_dir(home: Path) -> Path:
    """Where `ioc demo` keeps its data for this HOME (platformdirs' user data dir)."""
    return home / ".local" / "share" / "ioc" / "demo"


@dataclass
class DemoProcess:
    """`make demo` in its own session (as a terminal would run it), output captured by line."""

    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    lines: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        if self.proc.stdout is None:
            return
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace")
            for part in text.replace("\r", "\n").splitlines():
                if part.strip():
                    self.lines.append((time.monotonic() - self.started, part.rstrip()))

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float) -> tuple[float, re.Match[str]]:
        """(seconds since start, match) of the first output line matching `pattern`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                at, line = self.lines[seen]
                seen += 1
                match = regex.search(line)
                if match:
                    return at, match
            if self.proc.poll() is not None and seen >= len(self.lines):
                self._reader.join(2)
                if seen >= len(self.lines):
                    break
            time.sleep(0.05)
        tail = "\n".join(line for _, line in self.lines[-25:])
        raise TimeoutError(f"no line matching {pattern!r} within {timeout:.0f} s:\n{tail}")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def interrupt(self) -> None:
        """Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """Last resort for a failed run: the whole session, then its postgres."""
        for pid in session_pids(self.proc.pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _proc_pids() -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


def session_pids(sid: int) -> list[int]:
    """Live processes of session `sid` (zombies excluded)."""
    out = []
    for pid in _proc_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            out.append(pid)
    return out


def pids_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (the demo's cluster directory)."""
    needle = text.encode()
    out = []
    for pid in _proc_pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != "Z":
            out.append(pid)
    return out


def cluster_dir(data_dir: Path) -> Path:
    """The embedded cluster (data dir, or the folder it links to when root cannot share it)."""
    return (data_dir / "embedded-postgres").resolve()


def children_of(parents: set[int]) -> set[int]:
    """Live processes whose parent is one of `parents` (the server's backends and workers)."""
    out = set()
    for pid in _proc_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) in parents:
            out.add(pid)
    return out


def demo_pids(demo: DemoProcess, data_dir: Path) -> list[int]:
    """Every process of the demo: its session, and its cluster's server with its children."""
    found = set(session_pids(demo.proc.pid))
    servers = set(pids_mentioning(str(cluster_dir(data_dir) / "data")))
    found |= servers | children_of(servers)
    return sorted(found)


def memory_mb(pids: list[int]) -> dict[str, Any]:
    """Summed RSS and PSS (shared pages split between sharers: the honest total) in MB, and
    PSS by program (python = simulators + ingest + dashboard; postgres = server + backends)."""
    rss = pss = 0
    by_program: dict[str, float] = {}
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        program = "postgres" if name.startswith("postgres") else name
        for line in text.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                kb = int(line.split()[1])
                pss += kb
                by_program[program] = by_program.get(program, 0.0) + kb / 1024
    return {
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "pss_mb_by_program": {k: round(v, 1) for k, v in sorted(by_program.items())},
    }


def map_state(page: Any) -> tuple[int, int, list[str]]:
    """(coloured wards, wards drawn, KPI tile texts) as the browser shows them."""
    fills: list[str | None] = page.eval_on_selector_all(
        "path.ward", "els => els.map(e => e.getAttribute('fill'))"
    )
    tiles: list[str] = page.eval_on_selector_all(
        ".tile-value", "els => els.map(e => e.textContent || '')"
    )
    coloured = sum(1 for f in fills if f and f.lower() not in UNCOLOURED)
    return coloured, len(fills), tiles


def nonzero(text: str) -> bool:
    """A tile showing a number other than zero (e.g. '1.234', '87%', '12,5 tỷ')."""
    return bool(re.search(r"[1-9]", text))


@contextmanager
def browser_page() -> Iterator[Any]:
    """A headless Chromium page (the system's Chromium; nothing is downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            yield page
        finally:
            browser.close()


def wait_coloured_map(
    page: Any, url: str, demo: DemoProcess, deadline_s: float, min_wards: int
) -> tuple[float, int, int, list[str]]:
    """Open the wall and poll until >= min_wards are coloured and a KPI tile is non-zero.

    The wall rotates its map through the KPIs every 20 s, starting with VN_AQI; a feed with no
    recent event (dossiers at night) is rightly grey. When the map has shown no colour for
    15 s, the poll clicks the VN_AQI tile, as an operator would, to bring it back.
    """
    page.goto(url, wait_until="domcontentloaded")
    last: tuple[int, int, list[str]] = (0, 0, [])
    last_action = time.monotonic()
    while demo.elapsed() < deadline_s:
        with suppress(Exception):  # the page may be mid-render: poll again
            last = map_state(page)
        coloured, _total, tiles = last
        if coloured >= min_wards and any(nonzero(t) for t in tiles):
            return demo.elapsed(), *last
        if time.monotonic() - last_action > 15:
            with suppress(Exception):
                page.click(AQI_TILE, timeout=2000)
            last_action = time.monotonic()
        time.sleep(0.25)
    raise TimeoutError(f"map not coloured after {deadline_s:.0f} s (last state {last})")


def remove_fallback_cluster(data_dir: Path) -> None:
    """As root with a private HOME the cluster lives under /var/lib/ioc; remove it too."""
    link = data_dir / "embedded-postgres"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)


def run_once(
    home: Path, port: int, *, deadline_s: float, wait_history: bool, shot: Path | None
) -> dict[str, Any]:
    """One `make demo` until the map is coloured (and the history loaded), then Ctrl-C."""
    data_dir = default_data_dir(home)
    demo = DemoProcess(["make", "-s", "-C", str(REPO), "demo"], home, demo_env(home, port))
    result: dict[str, Any] = {}
    try:
        t_url, match = demo.wait_for(URL_RE.pattern, deadline_s)
        result["seconds_to_url"] = round(t_url, 2)
        peak: dict[str, Any] = {"pss_mb": 0.0}
        with browser_page() as page:
            t_map, coloured, total, tiles = wait_coloured_map(
                page, match.group(1), demo, deadline_s, min_wards=total_wards_hint()
            )
            result.update(
                seconds_to_coloured_map=round(t_map, 2), coloured_wards=coloured, wards=total
            )
            result["tiles_nonzero"] = sum(1 for t in tiles if nonzero(t))
            if shot is not None:
                page.screenshot(path=str(shot))
            if wait_history:
                while True:
                    mem = memory_mb(demo_pids(demo, data_dir))
                    if mem["pss_mb"] > peak["pss_mb"]:
                        peak = mem
                    if any("history loaded" in line for _, line in demo.lines):
                        break
                    if demo.elapsed() > 400:
                        raise TimeoutError("history not loaded after 400 s")
                    time.sleep(1.0)
                result["seconds_to_history_loaded"] = round(
                    demo.wait_for(r"history loaded", 1)[0], 2
                )
                result["peak_memory_during_backfill"] = peak
                time.sleep(10)  # live, with the browser still refreshing the wall
                result["memory_live"] = memory_mb(demo_pids(demo, data_dir))
                result["processes_live"] = len(demo_pids(demo, data_dir))
        t_stop = time.monotonic()
        demo.interrupt()
        demo.wait(90)
        result["seconds_to_stop"] = round(time.monotonic() - t_stop, 2)
        result["left_over_pids"] = demo_pids(demo, data_dir)
        result["output"] = [line for _, line in demo.lines if "history [" not in line]
        return result
    finally:
        if demo.proc.poll() is None:
            demo.kill()


def total_wards_hint() -> int:
    """At least half the pack's wards coloured counts as 'a coloured map'."""
    from ioc.core.citypack import load_pack

    return len(load_pack("halong").wards) // 2


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ioc-demo-bench-"))
    port = free_port()
    try:
        first = run_once(home, port, deadline_s=60, wait_history=True, shot=None)
        second = run_once(home, port, deadline_s=60, wait_history=False, shot=None)
    finally:
        remove_fallback_cluster(default_data_dir(home))
        shutil.rmtree(home, ignore_errors=True)
    summary = {
        "benchmark": "make demo on a clean HOME: command to coloured map in headless Chromium",
        "machine": describe(),
        "first_start": {k: v for k, v in first.items() if k != "output"},
        "second_start": {k: v for k, v in second.items() if k != "output"},
        "first_start_output": first["output"],
        "second_start_output": second["output"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("first_start", "second_start")}, indent=2))


if __name__ == "__main__":
    main()
