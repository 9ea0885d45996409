"""Callback step's app factory: the frame, its pages and the login gate, on injected parts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

from dash import Dash, html

from ioc.core.citypack import CityPack
from ioc.core.targets import DashboardConfig
from layouts import security
from layouts.data import Clock, DataSource, Pool, utc_now
from layouts.pages.login import routes as login
from layouts.pages.timeline import callbacks as timeline
from layouts.pages.wall import callbacks as wall
from layouts.pages.wall import layout as wall_layout
from layouts.pages.ward import callbacks as ward
from layouts.pages.ward import layout as ward_layout
from layouts.security import AuthOptions, Gate
from layouts.shell import callbacks as shell
from layouts.shell.layout import frame

ASSETS: Final = Path(__file__).resolve().parent / "assets"
log = logging.getLogger("ioc.dashboard")


def validation_layout(data: DataSource, tiles_url: str) -> Any:
    """The frame holding every page at once, so Dash can check each callback's ids against it.
    The map goes without its wards' shapes: this layout ships in every page load's config."""
    pages = html.Div(
        [
            wall_layout.layout(data, tiles_url, "vi", shapes=False),
            ward_layout.layout(data, data.pack.wards[0].code, "vi"),
        ]
    )
    return frame(data.pack.title, pages)


def create_app(
    pack: CityPack,
    config: DashboardConfig,
    pool: Pool,
    *,
    clock: Clock = utc_now,
    auth: AuthOptions | None = None,
    tiles_url: str = "",
    trusted_proxies: int = 0,
) -> Dash:
    """The dashboard of `pack` with `config`'s targets, thresholds and wall settings, reading
    through `pool` (opened by the caller; the app's data source closes it). `clock` is 'now';
    `tiles_url` a map background ({z}/{x}/{y}), none when empty; `trusted_proxies` how many
    reverse proxies' forwarding headers to believe. `auth` defaults to logins on;
    AuthOptions(enabled=False) (the demo only) serves everyone as an admin and says so."""
    auth = auth or AuthOptions()
    data = DataSource(pool, pack, config, clock)
    app = Dash(__name__, assets_folder=str(ASSETS), title=f"IOC {pack.title}", update_title="")
    app.layout = frame(pack.title)
    app.validation_layout = validation_layout(data, tiles_url)
    allowed = (
        shell.register(app, data, tiles_url)
        | timeline.register(app, data)
        | wall.register(app, data)
        | ward.register(app, data)
    )
    gate = Gate(pool, auth, clock)
    gate.permissions = allowed.permissions
    gate.callback_map = app.callback_map
    gate.csp = security.content_security_policy(list(app.csp_hashes()), tiles_url)
    security.install(app.server, gate)
    security.trust_proxies(app.server, trusted_proxies)
    login.register(app.server, pack.title)
    if not auth.enabled:
        log.warning("authentication is OFF: every visitor is an admin (demo only)")
    app.server.config["IOC_DATA"] = data  # for benchmarks and tests that time the queries
    return app
