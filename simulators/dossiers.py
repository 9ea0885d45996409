"""Simulator step of the dossiers feed: administrative-procedure cases at one-stop counters.

Dossiers are received in office hours (Mon-Fri 07:30-11:30 and 13:30-17:00, a light Saturday
morning), in proportion to ward population, online or at the counter; each then lives for days:
processing, perhaps a supplement request, resolution before or after its statutory due date
(set by procedure field), the result handed back - or withdrawal or rejection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Final, cast

from ioc.core.contracts import (
    PROCEDURE_FIELDS,
    DossierEvent,
    encode_event,
)
from ioc.core.contracts.dossiers import DossierChannel, DossierKind, ProcedureField, ServiceLevel
from ioc.core.feeds import DOSSIERS
from simulators.cases import CaseLoop
from simulators.context import SimContext
from simulators.core import (
    Item,
    Picker,
    factor_at,
    morning_share,
    office_profile,
    poisson,
    slot_of_day,
    slot_times,
    stream,
    trend_share,
)
from simulators.timebase import (
    WORK_SECONDS,
    day_number,
    day_start,
    local_day,
    to_datetime,
    weekday_of_day,
)

FEED: Final = DOSSIERS
# Bound once: every emitted item carries both, and `index` searches the registry.
TOPIC: Final = FEED.topic
INDEX: Final = FEED.index


class _Dossier:
    """One case: static fields, set when it is received."""

    __slots__ = (
        "channel",
        "digitized",
        "due",
        "e_signed",
        "fee",
        "field",
        "id",
        "key",
        "level",
        "received",
        "stamps",
        "ward",
    )
    channel: DossierChannel
    digitized: bool
    due: int
    e_signed: bool
    fee: int
    field: ProcedureField
    id: str
    key: bytes
    level: ServiceLevel
    received: int

    def __init__(self, ward: str) -> None:
        self.ward = ward
        # (received_at, due_at) as datetimes, made on first emission only: most warm-up
        # cases never emit.
        self.stamps: tuple[datetime, datetime] | None = None


class DossierSimulator:
    """Generates ioc.dossiers.v1 events for one run."""

    def __init__(self, ctx: SimContext) -> None:
        p = ctx.params
        self._ctx = ctx
        self._rng = stream(ctx.seed, FEED.name)
        self._cal = ctx.calendar
        wards = ctx.pack.wards
        self._wards = Picker([w.code for w in wards], [w.population for w in wards])
        self._commune = frozenset(w.code for w in wards if w.kind == "xa")
        population = sum(w.population for w in wards)
        self._per_workday = p.dossiers_per_1000_per_workday * population / 1000 * p.volume_scale
        weekday = office_profile()
        morning = [v if i < 48 else 0.0 for i, v in enumerate(weekday)]
        total_morning = sum(morning)
        saturday = [v / total_morning * morning_share(weekday) for v in morning]
        self._profiles = (weekday, tuple(p.dossier_saturday_factor * v for v in saturday))
        self._fields = Picker.of(p.procedure_mix)
        unknown = set(self._fields.names) - set(PROCEDURE_FIELDS)
        if unknown or set(dict(p.due_working_days)) != set(PROCEDURE_FIELDS):
            raise ValueError(f"procedure fields must be those of the contract: {unknown}")
        self._due_days = dict(p.due_working_days)
        self._fees = dict(p.fee_ranges)
        self._reference = day_start(day_number(date.fromisoformat(p.trend_reference)))
        self._outages: dict[str, list[tuple[int, int]]] = {}
        for ward, win in ctx.effects.counter_outages:
            self._outages.setdefault(ward, []).append((win.start, win.end))
        self._count = 0
        self._events = 0
        self._id_prefix = f"HS-{ctx.tag[:8]}-"
        self._event_prefix = f"{ctx.tag}-d"

    def items(self) -> Iterator[Item]:
        """Events with start <= event_time < end, in time order."""
        return CaseLoop(self._ctx, self._arrivals, self._schedule, self._emit).items()

    # -- arrivals -----------------------------------------------------------------------
    def expected(self, slot: int) -> float:
        """Expected dossiers received in the 15-minute slot starting at `slot`."""
        day = local_day(slot)
        if not self._cal.is_workday(day):
            if weekday_of_day(day) != 5 or self._cal.is_holiday(day):
                return 0.0
            base = self._per_workday * self._profiles[1][slot_of_day(slot)]
        else:
            factors = self._ctx.params.dossier_weekday_factors
            base = self._per_workday * factors[weekday_of_day(day)]
            base *= self._profiles[0][slot_of_day(slot)]
        return base * factor_at(self._ctx.effects.dossier_rate, slot) if base else 0.0

    def _arrivals(self, slot: int) -> list[tuple[int, _Dossier]]:
        lam = self.expected(slot)
        if lam <= 0.0:
            return []
        rng = self._rng
        n = poisson(rng, lam)
        return [(t, _Dossier(self._wards.pick(rng))) for t in slot_times(rng, slot, n)]

    # -- life cycle ---------------------------------------------------------------------
    # The helpers below draw from one random stream in a fixed order: reordering any draw
    # changes every later case, so the split follows the order of the draws.
    def _schedule(self, t: int, case: _Dossier) -> list[tuple[int, str]]:
        t, e_share = self._intake(t, case)
        self._register(t, case, e_share)
        return self._delay_for_outages(case.ward, self._steps(case))

    def _intake(self, t: int, case: _Dossier) -> tuple[int, float]:
        """Sets how the dossier came in; returns its received time and e-signed result share."""
        rng, cal, p = self._rng, self._cal, self._ctx.params
        online = trend_share(
            p.online_share, p.online_growth_per_year, p.online_bounds, t, self._reference
        )
        if case.ward in self._commune:
            online = max(online + p.online_commune_offset, 0.0)
        u = rng.random()
        if u < online:
            case.channel = "online"
            full = rng.random() < p.full_online_share_of_online
            case.level = "full_online" if full else "partial_online"
            case.digitized = True
            return t, p.e_signed_share_online
        case.channel = "postal" if u < online + p.postal_share else "counter"
        case.level = "partial_online" if rng.random() < 0.15 else "offline"
        case.digitized = rng.random() < p.digitized_share_offline
        # A closed counter turns people away; they come back after it reopens.
        for a, b in self._outages.get(case.ward, ()):
            if a <= t < b:
                t = cal.from_work(cal.to_work(b) + int(rng.random() * WORK_SECONDS))
        return t, p.e_signed_share_offline

    def _register(self, t: int, case: _Dossier, e_share: float) -> None:
        """Sets the procedure, fee, due date and ids of a dossier received at t."""
        rng = self._rng
        case.field = field = cast(ProcedureField, self._fields.pick(rng))
        low, high = self._fees[field]
        case.fee = 1000 * ((low + int(rng.random() * (high - low + 1))) // 1000)
        days = self._due_days[field]
        case.received = t
        case.due = self._cal.due_after(t, days[int(rng.random() * len(days))])
        self._count += 1
        case.id = f"{self._id_prefix}{self._count:07d}"
        case.key = case.id.encode()
        case.e_signed = rng.random() < e_share

    def _steps(self, case: _Dossier) -> list[tuple[int, str]]:
        """The registered dossier's steps (time, kind), before any counter outage delays them."""
        rng, cal, p = self._rng, self._cal, self._ctx.params
        w0 = cal.to_work(case.received)
        ends = self._ends(case, w0, cal.to_work(case.due) - 1)
        steps: list[tuple[int, str]] = [(case.received, "received")]
        w_end = ends[0][0]
        w_proc = w0 + max(60, int((w_end - w0) * (0.02 + 0.15 * rng.random())))
        if w_proc < w_end:
            steps.append((cal.from_work(w_proc), "processing"))
            if rng.random() < p.supplement_share:
                span = w_end - w_proc
                steps.append((cal.from_work(w_proc + int(span * 0.2)), "supplement_requested"))
                if rng.random() < p.supplement_answered_share:
                    steps.append((cal.from_work(w_proc + int(span * 0.5)), "supplement_received"))
                else:
                    ends = [(ends[0][0], "withdrawn")]
        steps.extend((cal.from_work(w), kind) for w, kind in ends)
        return steps

    def _ends(self, case: _Dossier, w0: int, wdue: int) -> list[tuple[int, str]]:
        """How the dossier closes, in working seconds: withdrawn, rejected or resolved+returned."""
        rng, p = self._rng, self._ctx.params
        u = rng.random()
        if u < p.withdrawn_share:
            return [(w0 + int((wdue - w0) * (0.1 + 0.8 * rng.random())), "withdrawn")]
        if u < p.withdrawn_share + p.rejected_share:
            return [(w0 + int((wdue - w0) * (0.05 + 0.75 * rng.random())), "rejected")]
        if rng.random() < p.dossier_late_share:
            late = rng.expovariate(1.0 / (p.dossier_late_mean_days * WORK_SECONDS))
            w_res = wdue + 60 + int(late)
        else:
            # Skewed towards early resolution, never past the due moment.
            w_res = w0 + int((wdue - w0) * rng.random() ** 0.8)
        gap = 60 + int(rng.random() * 2 * 3600)
        if case.channel != "online":
            # Both draws stay even when the first is unused: dropping one would shift the stream.
            gap = 600 + int(rng.random() * 2 * WORK_SECONDS)
        return [(w_res, "resolved"), (w_res + gap, "returned")]

    def _delay_for_outages(self, ward: str, steps: list[tuple[int, str]]) -> list[tuple[int, str]]:
        """Work that fell inside a counter outage waits for the backlog to clear after it."""
        outages = self._outages.get(ward)
        if not outages:
            return steps
        cal, rng = self._cal, self._rng
        out: list[tuple[int, str]] = [steps[0]]
        for t, kind in steps[1:]:
            t = max(t, out[-1][0])
            for a, b in outages:
                if a <= t < b:
                    backlog = int(rng.random() * 1.5 * WORK_SECONDS)
                    t = cal.from_work(cal.to_work(b) + backlog)
            out.append((t, kind))
        return out

    # -- events -------------------------------------------------------------------------
    def _emit(self, t: int, kind: str, case: _Dossier) -> Item:
        stamps = case.stamps
        if stamps is None:
            stamps = case.stamps = (to_datetime(case.received), to_datetime(case.due))
        self._events += 1
        ev = DossierEvent(
            event_id=f"{self._event_prefix}{self._events:09x}",
            event_time=to_datetime(t),
            dossier_id=case.id,
            ward_code=case.ward,
            kind=cast(DossierKind, kind),
            procedure_field=case.field,
            channel=case.channel,
            service_level=case.level,
            received_at=stamps[0],
            due_at=stamps[1],
            digitized=case.digitized,
            e_signed=case.e_signed and kind in ("resolved", "returned"),
            fee_vnd=case.fee,
        )
        return (t, INDEX, TOPIC, case.key, encode_event(ev), case.ward)
