"""Layout of the timeline: slider, Live, Play, range and speed, the header's "viewing" badge."""

from __future__ import annotations

from typing import Any, Final

from dash import dcc, html

from layouts.i18n import Lang, t
from layouts.pages.timeline.ids import (
    AS_OF,
    BAR,
    LIVE,
    PLAY,
    PLAY_TICK,
    PLAYBACK,
    RANGE,
    RANGE_LABEL,
    SLIDER,
    SPAN,
    SPAN_TICK,
    SPEED,
    SPEED_LABEL,
    VIEWING,
)
from layouts.pages.timeline.view import (
    DEFAULT_RANGE,
    DEFAULT_SPEED,
    FRAME_MS,
    RANGES,
    SPEEDS,
    STEP_S,
)

SPAN_REFRESH_MS: Final = 60_000


def range_options(lang: Lang) -> list[dict[str, str]]:
    return [{"label": t(f"tt.r{k}", lang), "value": k} for k in RANGES]


def speed_options(lang: Lang) -> list[dict[str, str]]:
    return [{"label": t(f"tt.s{k}", lang), "value": k} for k in SPEEDS]


def viewing_badge() -> Any:
    """The header's statement of the time shown ('Trực tiếp' or 'Xem lại lúc ...')."""
    return html.Div(id=VIEWING, className="viewing is-live")


def timeline_bar(lang: Lang) -> Any:
    """The bar under the header; its texts and range are filled by callbacks, so it is built
    once per app and keeps its state across pages and language changes."""
    return html.Div(
        [
            html.Button(t("tt.go_live", lang), id=LIVE, n_clicks=0, className="tt-live"),
            html.Div(
                dcc.Slider(
                    id=SLIDER,
                    min=0,
                    max=STEP_S,
                    step=STEP_S,
                    value=STEP_S,
                    marks={},
                    updatemode="mouseup",
                    allow_direct_input=False,
                    included=True,
                ),
                className="tt-slider",
            ),
            html.Button(t("tt.play", lang), id=PLAY, n_clicks=0, className="tt-play"),
            html.Span(t("tt.range", lang), id=RANGE_LABEL, className="tt-label"),
            dcc.Dropdown(
                id=RANGE,
                options=range_options(lang),
                value=DEFAULT_RANGE,
                clearable=False,
                searchable=False,
                className="tt-select",
            ),
            html.Span(t("tt.speed", lang), id=SPEED_LABEL, className="tt-label"),
            dcc.Dropdown(
                id=SPEED,
                options=speed_options(lang),
                value=DEFAULT_SPEED,
                clearable=False,
                searchable=False,
                className="tt-select",
            ),
            dcc.Store(id=AS_OF, data=None),
            dcc.Store(id=PLAYBACK, data=None),
            dcc.Store(id=SPAN, data=None),
            dcc.Interval(id=SPAN_TICK, interval=SPAN_REFRESH_MS),
            dcc.Interval(id=PLAY_TICK, interval=FRAME_MS, disabled=True),
        ],
        id=BAR,
        className="tt-bar is-live",
    )
