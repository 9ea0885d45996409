"""Callback step: the Dash app factory - header, language toggle, signed-in badge, the
time-travel timeline, routing between the wall view (/) and ward pages (/ward/<code>), bound to
one data source, behind the login gate (layouts.security) unless built with auth=False (the
demo)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import psycopg
from dash import Dash, Input, Output, State, dcc, html

from ioc.app.connect import connector, database_url
from ioc.app.settings import Settings
from ioc.core.auth.principals import Permission, Principal
from ioc.core.citypack import load_pack
from ioc.core.targets import DashboardConfig, load_config
from layouts import login, security, timeline, wall, ward
from layouts.components.timeline import timeline_bar, viewing_badge
from layouts.data import Clock, Connect, DataSource, utc_now
from layouts.i18n import Lang, lang_of, t
from layouts.security import AuthOptions, Gate, csrf_token, principal

ASSETS: Final = Path(__file__).resolve().parent / "assets"
PAGE: Final = "page"
LANG_BUTTON: Final = "lang-button"
TITLE: Final = "app-title"
CITY: Final = "app-city"
CLOCK: Final = "app-clock"
CLOCK_DATE: Final = "app-clock-date"
CLOCK_TICK: Final = "app-clock-tick"
USER: Final = "app-user"
log = logging.getLogger("ioc.dashboard")


def reader_connect(settings: Settings) -> Connect:
    """Connections as the dashboard's read-only role, on the configured schema."""
    return connector(
        database_url(settings, "reader"), settings.db_schema, "ioc-dashboard", connect_timeout=3
    )


def _lazy(settings: Settings) -> Connect:
    # Where the database is gets resolved on each connect, so a dashboard started before
    # `ioc services up` (or while the database is down) recovers by itself.
    def connect() -> psycopg.Connection[Any]:
        return reader_connect(settings)()

    return connect


def user_badge(who: Principal, lang: Lang, csrf: str) -> list[Any]:
    """Who is signed in (role and scope) and a logout button; the demo says it has no login."""
    if who.kind == "open":
        return [html.Span(t("auth.off", lang), className="auth-off")]
    scope = (
        t("scope.city", lang) if who.city_wide else t("scope.wards", lang, n=len(who.wards or ()))
    )
    parts: list[Any] = [
        html.Span(who.name, className="user-name"),
        html.Span(f"{t('role.' + who.role, lang)} · {scope}", className="user-role"),
    ]
    if who.kind == "user":
        parts.append(
            html.Form(
                [
                    dcc.Input(type="hidden", name="csrf", value=csrf),
                    html.Button(t("login.logout", lang), type="submit", className="logout"),
                ],
                method="POST",
                action="/logout",
            )
        )
    return parts


def _options(settings: Settings, auth: bool | AuthOptions) -> AuthOptions:
    if isinstance(auth, AuthOptions):
        return auth
    return AuthOptions(
        enabled=auth,
        session_hours=settings.session_hours,
        cookie_secure=True if settings.cookie_secure else None,
    )


def _permissions(keys: set[str], default: Permission) -> dict[str, Permission]:
    special: dict[str, Permission] = {
        f"{wall.ACKED}.data": "ack",
        f"{ward.DOWNLOAD}.data": "export",
    }
    return {k: special.get(k, default) for k in keys}


def create_app(
    settings: Settings,
    connect: Connect | None = None,
    clock: Clock = utc_now,
    config: DashboardConfig | None = None,
    auth: bool | AuthOptions = True,
) -> Dash:
    """The dashboard for settings' city pack; `connect` opens a read connection (default: the
    reader role of IOC_DATABASE_URL or the local services), `clock` is 'now', `config` replaces
    the pack's targets.toml (tests, demos). `auth=False` (the demo only) serves everyone as an
    admin without login and says so on screen and in the log."""
    pack = load_pack(settings.city_pack)
    config = config or load_config(pack.name, pack.codes)
    data = DataSource(connect or _lazy(settings), pack, config, clock)
    options = _options(settings, auth)
    app = Dash(
        __name__,
        assets_folder=str(ASSETS),
        title=f"IOC {pack.title}",
        suppress_callback_exceptions=True,
        update_title="",
    )
    app.layout = html.Div(
        [
            dcc.Location(id=wall.URL, refresh="callback-nav"),
            dcc.Store(id=wall.LANG, storage_type="local", data="vi"),
            dcc.Interval(id=CLOCK_TICK, interval=1000),
            html.Header(
                [
                    html.Div(
                        [
                            html.Div(pack.title, id=CITY, className="city"),
                            html.Div(id=TITLE, className="app-title"),
                        ],
                        className="brand",
                    ),
                    html.Div(id=USER, className="user-badge"),
                    viewing_badge(),
                    html.Div(
                        [
                            html.Div(id=CLOCK, className="clock-time"),
                            html.Div(id=CLOCK_DATE, className="clock-date"),
                        ],
                        className="clock",
                    ),
                    html.Button(id=LANG_BUTTON, n_clicks=0, className="lang-toggle"),
                ],
                className="topbar",
            ),
            timeline_bar("vi"),
            html.Main(id=PAGE, className="page"),
        ],
        id=timeline.ROOT,
        className="ioc-app",
    )
    tiles_url = settings.map_tiles_url

    @app.callback(
        Output(PAGE, "children"),
        Output(TITLE, "children"),
        Output(LANG_BUTTON, "children"),
        Output(USER, "children"),
        Input(wall.URL, "pathname"),
        Input(wall.LANG, "data"),
    )
    def route(pathname: Any, lang_raw: Any) -> tuple[Any, str, str, list[Any]]:
        who = principal()
        lang = lang_of(lang_raw)
        path = pathname if isinstance(pathname, str) else "/"
        if path.startswith("/ward/"):
            code = path.removeprefix("/ward/").strip("/")[:40]
            if not who.can("ward") or (code in data.pack and not who.sees(code)):
                page = html.Div(
                    [dcc.Link(t("ward.back", lang), href="/"), html.P(t("auth.denied", lang))],
                    className="denied",
                )
            else:
                page = ward.layout(data, code, lang)
        else:
            page = wall.layout(data, tiles_url, lang)
        badge = user_badge(who, lang, csrf_token())
        return page, t("app.title", lang), t("lang.toggle", lang), badge

    @app.callback(
        Output(wall.LANG, "data"),
        Input(LANG_BUTTON, "n_clicks"),
        State(wall.LANG, "data"),
        prevent_initial_call=True,
    )
    def toggle_language(_n: Any, lang_raw: Any) -> str:
        return "vi" if lang_of(lang_raw) == "en" else "en"

    # The clock runs in the browser: no server round trip per second for it.
    app.clientside_callback(  # type: ignore[no-untyped-call]
        """function (n, lang) {
            var d = new Date();
            var opts = {timeZone: 'Asia/Ho_Chi_Minh', hour12: false};
            var time = d.toLocaleTimeString('en-GB', opts);
            var p = new Intl.DateTimeFormat('en-GB', Object.assign({day: '2-digit',
                month: '2-digit', year: 'numeric'}, opts)).format(d);
            return [time, p];
        }""",
        Output(CLOCK, "children"),
        Output(CLOCK_DATE, "children"),
        Input(CLOCK_TICK, "n_intervals"),
        State(wall.LANG, "data"),
    )
    timeline.register(app, data)
    gate = Gate(data.pool, options, clock)
    permissions = _permissions(set(app.callback_map), "view")
    before = set(app.callback_map)
    wall.register(app, data)
    permissions |= _permissions(set(app.callback_map) - before, "wall")
    before = set(app.callback_map)
    ward.register(app, data)
    permissions |= _permissions(set(app.callback_map) - before, "ward")
    gate.permissions = permissions
    gate.callback_map = app.callback_map
    gate.csp = security.content_security_policy(list(app.csp_hashes()), tiles_url)
    security.install(app.server, gate)
    security.trust_proxies(app.server, settings.trusted_proxies)
    login.register(app.server, pack.title)
    if not options.enabled:
        log.warning("authentication is OFF: every visitor is an admin (demo only)")
    app.server.config["IOC_DATA"] = data  # for benchmarks and tests that time the queries
    return app
