"""Callbacks of the timeline: its range from the stored history, slider/Live/Play, its labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from dash import Dash, Input, Output, State, ctx, no_update

from layouts.data import DataSource, Unavailable
from layouts.i18n import lang_of, t
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
from layouts.pages.timeline.layout import range_options, speed_options
from layouts.pages.timeline.view import (
    Playback,
    control,
    main_trigger,
    parse_as_of,
    range_from_store,
    slider_marks,
    slider_range,
    viewing_label,
)
from layouts.registry import Registered, callback, registered
from layouts.shell.ids import LANG, ROOT

TRIGGERS: Final = {SLIDER: "slider", LIVE: "live", PLAY: "play", PLAY_TICK: "tick"}
CONTROL: Final = (
    Output(AS_OF, "data"),
    Output(SLIDER, "value"),
    Output(PLAYBACK, "data"),
    Output(PLAY_TICK, "disabled"),
    Input(SLIDER, "value"),
    Input(LIVE, "n_clicks"),
    Input(PLAY, "n_clicks"),
    Input(PLAY_TICK, "n_intervals"),
    Input(SPAN, "data"),
    State(AS_OF, "data"),
    State(PLAYBACK, "data"),
    State(RANGE, "value"),
    State(SPEED, "value"),
)
LABELS: Final = (
    Output(VIEWING, "children"),
    Output(VIEWING, "className"),
    Output(BAR, "className"),
    Output(ROOT, "className"),
    Output(LIVE, "children"),
    Output(PLAY, "children"),
    Output(RANGE_LABEL, "children"),
    Output(SPEED_LABEL, "children"),
    Output(RANGE, "options"),
    Output(SPEED, "options"),
    Input(AS_OF, "data"),
    Input(PLAYBACK, "data"),
    Input(LANG, "data"),
)


def register(app: Dash, data: DataSource) -> Registered:
    """The timeline's callbacks on this app and data source; anyone who may view calls them."""
    return registered(
        app, {_span(app, data): "view", _control(app, data): "view", _labels(app, data): "view"}
    )


def _span(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(
        app,
        Output(SPAN, "data"),
        Output(SLIDER, "min"),
        Output(SLIDER, "max"),
        Output(SLIDER, "marks"),
        Input(SPAN_TICK, "n_intervals"),
        Input(LANG, "data"),
    )
    def span(_n: Any, lang_raw: Any) -> tuple[Any, ...]:
        found = data.span()
        if isinstance(found, Unavailable):
            return no_update, no_update, no_update, no_update
        rng = slider_range(found, data.clock())
        marks = slider_marks(rng, lang_of(lang_raw))
        return {"low": rng.low, "high": rng.high}, rng.low, rng.high, marks

    return span


def _control(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *CONTROL, prevent_initial_call=True)
    def timeline(
        picked: Any,
        _live: Any,
        _play: Any,
        _tick: Any,
        span_raw: Any,
        as_of_raw: Any,
        playback_raw: Any,
        range_key: Any,
        speed_key: Any,
    ) -> tuple[Any, ...]:
        now = data.clock()
        fired = {TRIGGERS.get(str(p).rsplit(".", 1)[0], "") for p in ctx.triggered_prop_ids}
        out = control(
            main_trigger(fired),
            picked,
            parse_as_of(as_of_raw, now),
            Playback.from_store(playback_raw),
            range_from_store(span_raw, now),
            range_key,
            speed_key,
            now,
        )
        return out.as_of, out.slider, out.playback.to_store(), out.timer_disabled

    return timeline


def _labels(app: Dash, data: DataSource) -> Callable[..., Any]:
    @callback(app, *LABELS)
    def labels(as_of_raw: Any, playback_raw: Any, lang_raw: Any) -> tuple[Any, ...]:
        lang = lang_of(lang_raw)
        as_of = parse_as_of(as_of_raw, data.clock())
        mode = "is-live" if as_of is None else "is-travel"
        playing = Playback.from_store(playback_raw).playing
        return (
            viewing_label(as_of, lang),
            f"viewing {mode}",
            f"tt-bar {mode}" + (" is-playing" if playing else ""),
            f"ioc-app {mode}",
            t("tt.go_live", lang),
            t("tt.pause", lang) if playing else t("tt.play", lang),
            t("tt.range", lang),
            t("tt.speed", lang),
            range_options(lang),
            speed_options(lang),
        )

    return labels
