"""Callback step of time travel: the timeline's thin callbacks - its range from the stored
history, the state machine of slider, Live and Play, and the header's "viewing" statement.
The wall view and the ward page read the viewed time from the AS_OF store."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update

from layouts.components.timeline import (
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
    range_options,
    speed_options,
)
from layouts.data import DataSource, Unavailable
from layouts.i18n import lang_of, t
from layouts.timeline_view import (
    Playback,
    control,
    main_trigger,
    parse_as_of,
    range_from_store,
    slider_marks,
    slider_range,
    viewing_label,
)

LANG = "lang"  # the app's language store
ROOT = "app-root"  # the app's outer element, marked while time-travelling
TRIGGERS = {SLIDER: "slider", LIVE: "live", PLAY: "play", PLAY_TICK: "tick"}


def register(app: Dash, data: DataSource) -> None:
    """The timeline's callbacks, bound to this app and its data source."""

    @app.callback(
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

    @app.callback(
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
        prevent_initial_call=True,
    )
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

    @app.callback(
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
