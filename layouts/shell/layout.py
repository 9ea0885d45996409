"""Layout of the frame: the header and the timeline bar above the page the route fills."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from layouts.pages.timeline.layout import timeline_bar, viewing_badge
from layouts.shell.ids import (
    CITY,
    CLOCK,
    CLOCK_DATE,
    CLOCK_TICK,
    LANG,
    LANG_BUTTON,
    PAGE,
    ROOT,
    TITLE,
    URL,
    USER,
)


def _header(city: str) -> Any:
    return html.Header(
        [
            html.Div(
                [
                    html.Div(city, id=CITY, className="city"),
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
    )


def frame(city: str, page: Any = None) -> Any:
    """The app's layout for `city`, with `page` in its main element (the route fills it)."""
    return html.Div(
        [
            dcc.Location(id=URL, refresh="callback-nav"),
            dcc.Store(id=LANG, storage_type="local", data="vi"),
            dcc.Interval(id=CLOCK_TICK, interval=1000),
            _header(city),
            timeline_bar("vi"),
            html.Main(page, id=PAGE, className="page"),
        ],
        id=ROOT,
        className="ioc-app",
    )
