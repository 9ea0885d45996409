"""The demo's dashboard: `ioc dashboard`'s app and server, in a thread sharing the live clock."""

from __future__ import annotations

import contextlib
import importlib.util
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ioc.app.demo.checks import DemoError
from ioc.app.settings import Settings


class Dashboard:
    """The production app (built as `ioc dashboard` builds it) behind waitress, in a thread of
    this process."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime], threads: int) -> None:
        from waitress.server import create_server

        from ioc.app.commands.dashboard import dashboard_app

        # The demo runs on a laptop for one person: no login (the page and the log say so).
        app = dashboard_app(settings, threads=threads, clock=clock, auth=False)
        self._data = app.server.config["IOC_DATA"]
        try:
            self._server: Any = create_server(
                app.server,
                host=settings.dashboard_host,
                port=settings.dashboard_port,
                threads=threads,
                ident="ioc-dashboard",
            )
        except OSError as exc:
            self._data.close()
            raise DemoError(
                f"cannot serve the dashboard on {settings.dashboard_host}:"
                f"{settings.dashboard_port} ({exc.strerror or exc}); choose another --port"
            ) from None
        self._thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closing the socket ends the loop
            self._server.run()

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # best effort: the process is about to exit
            self._server.task_dispatcher.shutdown(timeout=2)
            self._server.close()
        with contextlib.suppress(Exception):
            self._data.close()  # its pool's connections, before the database stops


def dashboard_available() -> bool:
    """Whether the dashboard package and its server are installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("layouts.app", "waitress"))


def preload() -> threading.Thread | None:
    """Import Dash and the app in a thread while the database starts (a second or two)."""
    if not dashboard_available():
        return None

    def load() -> None:
        with contextlib.suppress(Exception):  # a real import error shows when the app is built
            importlib.import_module("layouts.app")
            importlib.import_module("waitress.server")

    thread = threading.Thread(target=load, name="dashboard-import", daemon=True)
    thread.start()
    return thread


def wait_answering(url: str, timeout: float, stop: threading.Event) -> bool:
    """Until GET url answers 200 (True), or timeout/stop (False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own http URL
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        stop.wait(0.1)
    return False
