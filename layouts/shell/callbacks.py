"""Callbacks of the frame: routing between the wall and ward pages, language, the clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from dash import Dash, Input, Output, State

from layouts.data import DataSource
from layouts.i18n import lang_of, t
from layouts.pages.wall import layout as wall
from layouts.pages.ward import layout as ward
from layouts.registry import Registered, callback, registered
from layouts.security import csrf_token, principal
from layouts.shell.ids import (
    CLOCK,
    CLOCK_DATE,
    CLOCK_TICK,
    LANG,
    LANG_BUTTON,
    PAGE,
    TITLE,
    URL,
    USER,
)
from layouts.shell.view import denied, user_badge, ward_path

# The clock runs in the browser: no server round trip per second for it.
CLOCK_JS: Final = """function (n, lang) {
    var d = new Date();
    var opts = {timeZone: 'Asia/Ho_Chi_Minh', hour12: false};
    var time = d.toLocaleTimeString('en-GB', opts);
    var p = new Intl.DateTimeFormat('en-GB', Object.assign({day: '2-digit',
        month: '2-digit', year: 'numeric'}, opts)).format(d);
    return [time, p];
}"""


def register(app: Dash, data: DataSource, tiles_url: str) -> Registered:
    """The frame's callbacks on this app and data source; anyone who may view calls them."""
    app.clientside_callback(  # type: ignore[no-untyped-call]
        CLOCK_JS,
        Output(CLOCK, "children"),
        Output(CLOCK_DATE, "children"),
        Input(CLOCK_TICK, "n_intervals"),
        State(LANG, "data"),
    )
    return registered(app, {_route(app, data, tiles_url): "view", _language(app): "view"})


def _route(app: Dash, data: DataSource, tiles_url: str) -> Callable[..., Any]:
    @callback(
        app,
        Output(PAGE, "children"),
        Output(TITLE, "children"),
        Output(LANG_BUTTON, "children"),
        Output(USER, "children"),
        Input(URL, "pathname"),
        Input(LANG, "data"),
    )
    def route(pathname: Any, lang_raw: Any) -> tuple[Any, str, str, list[Any]]:
        who = principal()
        lang = lang_of(lang_raw)
        code = ward_path(pathname if isinstance(pathname, str) else "/")
        if code is None:
            page = wall.layout(data, tiles_url, lang)
        elif not who.can("ward") or (code in data.pack and not who.sees(code)):
            page = denied(lang)
        else:
            page = ward.layout(data, code, lang)
        badge = user_badge(who, lang, csrf_token())
        return page, t("app.title", lang), t("lang.toggle", lang), badge

    return route


def _language(app: Dash) -> Callable[..., Any]:
    @callback(
        app,
        Output(LANG, "data"),
        Input(LANG_BUTTON, "n_clicks"),
        State(LANG, "data"),
        prevent_initial_call=True,
    )
    def toggle_language(_n: Any, lang_raw: Any) -> str:
        return "vi" if lang_of(lang_raw) == "en" else "en"

    return toggle_language
