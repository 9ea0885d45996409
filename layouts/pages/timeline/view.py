"""Pure parts of the timeline: the viewed time checked and snapped, range, marks, playback."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ioc.core.contracts import VN_TZ
from ioc.core.queries.timeline import Span
from layouts.i18n import Lang, t

STEP_S: Final = 300  # the timeline moves in 5-minute steps; window KPIs use whole hours
# Nothing older is history of this product; it also keeps datetime arithmetic in range.
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
MAX_MARKS: Final = 8
FRAME_MS: Final = 1000  # one playback frame per second: a step's server time is far below
# History moved per playback frame, in seconds.
SPEEDS: Final[Mapping[str, int]] = {"5m": 300, "15m": 900, "1h": 3600, "3h": 3 * 3600}
DEFAULT_SPEED: Final = "1h"
# How far back from the end of the history playback starts (None: from its beginning).
RANGES: Final[Mapping[str, int | None]] = {
    "6h": 6 * 3600,
    "24h": 86400,
    "7d": 7 * 86400,
    "all": None,
}
DEFAULT_RANGE: Final = "24h"
# Candidate distances between slider marks, the smallest giving at most MAX_MARKS wins.
MARK_STEPS_H: Final = (1, 3, 6, 12, 24, 48, 7 * 24, 14 * 24, 28 * 24, 56 * 24)


def epoch(t_: datetime) -> int:
    return int(t_.timestamp())


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def snap(t_: datetime, step_s: int = STEP_S) -> datetime:
    """t floored to the step (5 minutes by default; Vietnam's offset is whole hours, so the
    steps fall on the same minutes locally)."""
    seconds = epoch(t_)
    return from_epoch(seconds - seconds % step_s)


def number(raw: object) -> float | None:
    """A finite JSON number (not a boolean), else None."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def parse_as_of(raw: object, now: datetime) -> datetime | None:
    """The time a (possibly forged) store asks to view, snapped: None means live - for no
    value, anything that is not a number, or a time not before now."""
    value = number(raw)
    if value is None or value >= now.timestamp():
        return None
    return snap(from_epoch(max(value, EARLIEST.timestamp())))


@dataclass(frozen=True)
class Range:
    """The slider's range in epoch seconds, both ends on a step."""

    low: int
    high: int


def slider_range(span: Span | None, now: datetime) -> Range:
    """From the first stored hour to the end of the history (never after now); a day up to
    now while nothing is stored, so the slider still draws."""
    high_t = now if span is None else min(span.end, now)
    low_t = high_t - timedelta(days=1) if span is None else min(span.start, high_t)
    high = epoch(snap(high_t))
    low = epoch(snap(low_t))
    return Range(low, max(high, low + STEP_S))


def _mark_label(t_: datetime, step_h: int, lang: Lang) -> str:
    """A day mark names the day (20/11, or 20 Nov), an hour mark the hour (14:00)."""
    local = t_.astimezone(VN_TZ)
    if step_h >= 24 or (local.hour == 0 and local.minute == 0):
        if lang == "vi":
            return f"{local.day:02d}/{local.month:02d}"
        return f"{local.day} {local.strftime('%b')}"
    return f"{local.hour:02d}:00"


def slider_marks(rng: Range, lang: Lang) -> dict[str, str]:
    """At most MAX_MARKS labels on round local times (hours or days) inside the range."""
    span_h = (rng.high - rng.low) / 3600.0
    step_h = next((s for s in MARK_STEPS_H if span_h / s <= MAX_MARKS), MARK_STEPS_H[-1])
    start = from_epoch(rng.low).astimezone(VN_TZ)
    if step_h >= 24:
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = start.replace(minute=0, second=0, microsecond=0)
        first = first.replace(hour=first.hour - first.hour % step_h)
    marks: dict[str, str] = {}
    t_ = first
    while epoch(t_) <= rng.high:
        if epoch(t_) >= rng.low:
            marks[str(epoch(t_))] = _mark_label(t_, step_h, lang)
        t_ += timedelta(hours=step_h)
    return marks


def fmt_moment(t_: datetime) -> str:
    """dd/mm/yyyy HH:MM in Vietnam time (both languages, as the header shows it)."""
    local = t_.astimezone(VN_TZ)
    return local.strftime("%d/%m/%Y %H:%M")


def viewing_label(as_of: datetime | None, lang: Lang) -> str:
    """The header's statement of what time is shown."""
    if as_of is None:
        return t("tt.live", lang)
    return t("tt.viewing", lang, time=fmt_moment(as_of))


@dataclass(frozen=True)
class Playback:
    """Playback state kept in the browser: playing or not, and the range it plays."""

    playing: bool = False
    start: int = 0
    end: int = 0

    def to_store(self) -> dict[str, Any]:
        return {"playing": self.playing, "start": self.start, "end": self.end}

    @classmethod
    def from_store(cls, raw: object) -> Playback:
        """The store's state; anything malformed is 'stopped'."""
        if not isinstance(raw, Mapping):
            return cls()
        start, end = number(raw.get("start")), number(raw.get("end"))
        if raw.get("playing") is not True or start is None or end is None or end <= start:
            return cls()
        return cls(True, int(start), int(end))


@dataclass(frozen=True)
class Control:
    """What one timeline event leads to: the viewed time (None: live), where the slider's
    handle goes, the playback state, and whether the frame timer runs."""

    as_of: int | None
    slider: int
    playback: Playback

    @property
    def timer_disabled(self) -> bool:
        return not self.playback.playing


# When the renderer merges events that came while a request was in flight, people's actions
# win over the frame timer and the range refresh.
PRIORITY: Final = ("live", "play", "slider", "tick")


def main_trigger(kinds: set[str]) -> str | None:
    """The event to act on among those one request carries."""
    return next((k for k in PRIORITY if k in kinds), None)


def choice(raw: object, options: Mapping[str, Any], default: str) -> str:
    return raw if isinstance(raw, str) and raw in options else default


def control(
    trigger: str | None,
    picked: object,
    as_of: datetime | None,
    playback: Playback,
    rng: Range,
    range_key: str,
    speed_key: str,
    now: datetime,
) -> Control:
    """The timeline's state machine. trigger: 'slider' (a time picked; pauses playback),
    'live' (back to now), 'play' (start or pause; starts inside the chosen range, from the
    viewed time if it lies there), 'tick' (one frame further; stops at the range's end), or
    anything else (the range moved: keep the viewed time, park a live handle at the end)."""
    current = None if as_of is None else epoch(as_of)
    if trigger == "live":
        return Control(None, rng.high, Playback())
    if trigger == "slider":
        value = number(picked)
        if value is None:
            return Control(current, rng.high if current is None else current, Playback())
        chosen = parse_as_of(min(max(value, rng.low), rng.high), now)
        moment = None if chosen is None else epoch(chosen)
        return Control(moment, rng.high if moment is None else moment, Playback())
    if trigger == "play":
        if playback.playing:
            return Control(current, rng.high if current is None else current, Playback())
        back = RANGES[choice(range_key, RANGES, DEFAULT_RANGE)]
        start = rng.low if back is None else max(rng.low, rng.high - back)
        begin = current if current is not None and start <= current < rng.high else start
        return Control(begin, begin, Playback(True, start, rng.high))
    if trigger == "tick":
        if not playback.playing or current is None:
            return Control(current, rng.high if current is None else current, Playback())
        step = SPEEDS[choice(speed_key, SPEEDS, DEFAULT_SPEED)]
        nxt = min(current + step, playback.end)
        done = nxt >= playback.end
        return Control(nxt, nxt, Playback() if done else playback)
    return Control(current, rng.high if current is None else current, playback)


def range_from_store(raw: object, now: datetime) -> Range:
    """The slider's range as the (possibly forged) span store has it, kept inside
    [EARLIEST, now]; a day up to now when it is missing or malformed."""
    fallback = slider_range(None, now)
    low = number(raw.get("low")) if isinstance(raw, Mapping) else None
    high = number(raw.get("high")) if isinstance(raw, Mapping) else None
    if low is None or high is None:
        return fallback
    high = min(max(high, EARLIEST.timestamp()), now.timestamp())
    low = min(max(low, EARLIEST.timestamp()), high)
    lo, hi = epoch(snap(from_epoch(low))), epoch(snap(from_epoch(high)))
    return Range(lo, hi) if hi > lo else fallback
