"""Simulator -> topic step, kept on disk: a small library of recorded scenarios."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ioc.core.citypack import CityPack
from ioc.core.feeds import FEED_NAMES
from ioc.core.sinks import Sink
from simulators.engine import SimConfig, generate
from simulators.params import SimParams
from simulators.scenarios import parse_scenario

SUFFIX: Final = ".ndjson.gz"
# Opens the sink a run is recorded into (the application's choice: a recording file):
# (path, the run's config, the pack, a description of what it shows).
RecordingSinks = Callable[[Path, SimConfig, CityPack, str], Sink]


@dataclass(frozen=True)
class LibraryEntry:
    """One recorded scenario: what it shows and the simulator run that produces it.

    Each entry is a seeded simulator run (fixed start, duration, scenarios and volume), recorded
    as <name>.ndjson.gz beside this file and replayable by name (`ioc replay scenario:<name>`).
    `ioc recordings build` regenerates them; the same code gives the same bytes.
    """

    name: str
    description: str
    start: str
    duration: timedelta
    scenarios: tuple[str, ...]
    seed: int = 2026
    volume_scale: float = 0.25
    pack: str = "halong"

    def config(self) -> SimConfig:
        return SimConfig(
            start=datetime.fromisoformat(self.start),
            duration=self.duration,
            seed=self.seed,
            feeds=FEED_NAMES,
            scenarios=tuple(parse_scenario(s) for s in self.scenarios),
            params=replace(SimParams(), volume_scale=self.volume_scale),
        )


LIBRARY: Final[dict[str, LibraryEntry]] = {
    e.name: e
    for e in (
        LibraryEntry(
            "pollution_episode",
            "A dry-season day in Ha Long: PM2.5 and PM10 six times normal for 12 hours in the "
            "three most populous wards, from 06:00.",
            "2025-12-10T00:00:00+07:00",
            timedelta(days=1),
            ("pollution_episode:after=6h,hours=12,factor=6",),
        ),
        LibraryEntry(
            "counter_outage",
            "The one-stop counter of the most populous ward is down for 30 hours from Monday "
            "08:00: received dossiers pile up and the overdue backlog grows, then drains. "
            "One batch of malformed messages arrives at 20:00 on the first day.",
            "2025-11-17T00:00:00+07:00",
            timedelta(days=2),
            ("counter_outage:after=8h,hours=30", "poison:after=20h"),
        ),
        LibraryEntry(
            "holiday_rush",
            "The three days before the Tet 2026 holiday (from 14 Feb in the simulator's "
            "calendar): dossiers 1.8 times and payments about twice the usual volume, then the "
            "first day with offices closed.",
            "2026-02-11T00:00:00+07:00",
            timedelta(days=4),
            ("tet_rush:days=3,factor=1.8,holiday_days=5",),
            volume_scale=0.12,
        ),
    )
}


def path_of(name: str) -> Path:
    """Where a library recording lives (it may not have been built)."""
    return Path(__file__).resolve().parent / f"{name}{SUFFIX}"


def describe_run(config: SimConfig, pack: CityPack) -> dict[str, Any]:
    """What a recording's header says about the simulator run it holds."""
    return {
        "pack": pack.name,
        "seed": config.seed,
        "start": config.start.isoformat(),
        "duration_s": None if config.duration is None else config.duration.total_seconds(),
        "scenarios": [str(s) for s in config.scenarios],
        "volume_scale": config.params.volume_scale,
    }


def record_simulation(config: SimConfig, pack: CityPack, sink: Sink) -> int:
    """Send a whole simulator run into `sink` as fast as it is generated, each message with its
    event time; returns the number sent. The caller closes the sink."""
    if config.duration is None:
        raise ValueError("a recorded run needs a duration")
    n = 0
    for t, _index, topic, key, value, _ward in generate(config, pack):
        sink.send(topic, key, value, time_ms=t * 1000)
        n += 1
    return n


def build(
    names: Iterable[str], open_sink: RecordingSinks, directory: Path | None = None
) -> dict[str, int]:
    """Regenerate library recordings by name (into `directory`, default beside this file)
    through the sinks `open_sink` makes; returns the records written per name."""
    from ioc.core.citypack import load_pack

    out: dict[str, int] = {}
    for name in names:
        entry = LIBRARY[name]
        path = path_of(name) if directory is None else directory / f"{name}{SUFFIX}"
        pack = load_pack(entry.pack)
        config = entry.config()
        sink = open_sink(path, config, pack, entry.description)
        try:
            out[name] = record_simulation(config, pack, sink)
        finally:
            sink.close()
    return out
