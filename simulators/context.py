"""Simulator step of the data path: the run context every generator receives.

It holds the time span, the city, the parameters, the calendar and the chosen scenarios' effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ioc.core.citypack import CityPack
from simulators.core import Window
from simulators.params import SimParams
from simulators.timebase import WorkCalendar


@dataclass(frozen=True)
class Effects:
    """What the chosen scenarios change, compiled to plain windows the generators consult."""

    # Extra days on which offices are closed (e.g. a holiday after a rush).
    closed_days: tuple[int, ...] = ()
    # Arrival-rate multipliers per feed.
    dossier_rate: tuple[Window, ...] = ()
    payment_rate: tuple[Window, ...] = ()
    feedback_rate: tuple[Window, ...] = ()
    # (ward code, window): the ward's one-stop counter takes and processes nothing.
    counter_outages: tuple[tuple[str, Window], ...] = ()
    # (ward codes, window with a PM multiplier at its peak).
    pollution: tuple[tuple[frozenset[str], Window], ...] = ()
    # (station id, mode "stuck" | "negative" | "missing", window).
    sensor_faults: tuple[tuple[str, str, Window], ...] = ()
    # (first moment, repeat period or None): when batches of poison messages are emitted.
    poison: tuple[tuple[int, int | None], ...] = ()

    def merged(self, other: Effects) -> Effects:
        """Both sets of effects (scenarios compose by concatenation)."""
        return Effects(
            closed_days=self.closed_days + other.closed_days,
            dossier_rate=self.dossier_rate + other.dossier_rate,
            payment_rate=self.payment_rate + other.payment_rate,
            feedback_rate=self.feedback_rate + other.feedback_rate,
            counter_outages=self.counter_outages + other.counter_outages,
            pollution=self.pollution + other.pollution,
            sensor_faults=self.sensor_faults + other.sensor_faults,
            poison=self.poison + other.poison,
        )


@dataclass(frozen=True)
class SimContext:
    """One run: emit events with start <= event_time < end (end None: never stop)."""

    seed: int
    start: int
    end: int | None
    pack: CityPack
    params: SimParams
    calendar: WorkCalendar
    tag: str
    effects: Effects = field(default_factory=Effects)

    @property
    def warm_start(self) -> int:
        """Where silent simulation begins, so the city is in a steady state at `start`."""
        return self.start - self.params.warmup_days * 86_400
