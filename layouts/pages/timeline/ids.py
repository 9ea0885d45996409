"""Component ids of the timeline bar and of the stores that carry the viewed time."""

from __future__ import annotations

from typing import Final

BAR: Final = "tt-bar"
SLIDER: Final = "tt-slider"
LIVE: Final = "tt-live"
PLAY: Final = "tt-play"
RANGE: Final = "tt-range"
SPEED: Final = "tt-speed"
RANGE_LABEL: Final = "tt-range-label"
SPEED_LABEL: Final = "tt-speed-label"
VIEWING: Final = "tt-viewing"
AS_OF: Final = "tt-as-of"  # store: None = live, else the viewed time (epoch seconds)
PLAYBACK: Final = "tt-playback"  # store: Playback.to_store()
SPAN: Final = "tt-span"  # store: the slider's range {low, high}
SPAN_TICK: Final = "tt-span-tick"
PLAY_TICK: Final = "tt-play-tick"
