"""Browser-test helpers: headless Debian Chromium through Playwright, and serving an app."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from waitress.server import create_server

ARTIFACTS: Final = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM: Final = "/usr/bin/chromium"
# As root in a sandbox-less container, and with no network beyond loopback.
CHROMIUM_ARGS: Final = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def serve(app: Any) -> tuple[str, Callable[[], None]]:
    """Serve a Dash app with waitress on a free loopback port: (base URL, stop)."""
    server = create_server(app.server, host="127.0.0.1", port=0, threads=6)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.effective_port}", server.close
