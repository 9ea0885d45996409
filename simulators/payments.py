"""Simulator step of the payments feed: cashless payments at merchants and public counters.

Retail payments (market stalls, shops) follow the day with an evening-market peak; fees and tax
are paid at the ward's one-stop counter in office hours, in cash or cashless with a cashless
share rising over the years; utility bills are paid through the day. Volumes follow population.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Final, cast

from ioc.core.citypack import CityPack
from ioc.core.contracts import MERCHANT_TYPES, PAYMENT_CHANNELS, PaymentEvent, encode_event
from ioc.core.contracts.payments import MerchantType, PaymentChannel, PaymentStatus
from ioc.core.feeds import PAYMENTS
from simulators.context import SimContext
from simulators.core import (
    SLOT,
    Item,
    Picker,
    factor_at,
    interpolate_hourly,
    normal_table,
    normalise,
    office_profile,
    poisson,
    slot_of_day,
    stream,
    trend_share,
)
from simulators.params import Mix, SimParams
from simulators.timebase import day_number, day_start, local_day, to_datetime, weekday_of_day

FEED: Final = PAYMENTS
# Bound once: every emitted item carries both, and `index` searches the registry.
TOPIC: Final = FEED.topic
INDEX: Final = FEED.index

# Share of a day's retail payments per hour: a morning market, lunch, and the evening market.
RETAIL_HOURS = (
    0.10,
    0.05,
    0.03,
    0.03,
    0.05,
    0.30,
    1.00,
    1.40,
    1.20,
    1.00,
    1.00,
    1.20,
    1.10,
    0.80,
    0.70,
    0.80,
    1.20,
    1.90,
    2.30,
    2.10,
    1.60,
    1.00,
    0.50,
    0.25,
)
UTILITY_HOURS = (
    0.02,
    0.01,
    0.01,
    0.01,
    0.02,
    0.05,
    0.3,
    0.8,
    1.0,
    1.0,
    1.0,
    0.9,
    0.8,
    0.8,
    0.9,
    0.9,
    0.9,
    0.9,
    1.0,
    1.1,
    1.1,
    0.9,
    0.5,
    0.1,
)

# Arrival streams, by their index in the simulator's per-stream tuples: each has its own daily
# profile and its own merchants.
RETAIL, PUBLIC_FEE, TAX, UTILITY = range(4)

_Arrival = tuple[int, int, int]  # (time, stream, merchant index within the stream)


class _Merchant:
    """An acceptance point, with what the hot path draws from kept in plain attributes."""

    __slots__ = ("channel_cum", "channel_names", "id", "key", "median", "sd", "type", "ward")

    def __init__(
        self, mid: str, ward: str, mtype: MerchantType, channels: Picker, median: int, sd: float
    ) -> None:
        self.id = mid
        self.key = mid.encode()
        self.ward = ward
        self.type = mtype
        self.channel_names = channels.names
        self.channel_cum = channels.cum
        self.median = math.log(median) if median > 0 else 0.0
        self.sd = sd


def _channel_pickers(p: SimParams) -> dict[MerchantType, Picker]:
    """Each merchant type's payment channels; ValueError if the parameters leave the contract."""
    mixes: dict[MerchantType, Mix] = {
        "market_stall": p.market_stall_channels,
        "shop": p.shop_channels,
        "public_service_fee": p.public_fee_channels,
        "tax": p.tax_channels,
        "utility_bill": p.utility_channels,
    }
    for mix in mixes.values():
        bad = {name for name, _ in mix} - set(PAYMENT_CHANNELS)
        if bad:
            raise ValueError(f"unknown payment channel(s) in parameters: {sorted(bad)}")
    pickers = {mtype: Picker.of(mix) for mtype, mix in mixes.items()}
    if set(pickers) != set(MERCHANT_TYPES):
        raise ValueError("merchant types must be those of the contract")
    return pickers


class _Roster:
    """The city's acceptance points per stream, with the weights arrivals pick them by."""

    def __init__(
        self, pack: CityPack, p: SimParams, channels: Mapping[MerchantType, Picker]
    ) -> None:
        # The merchant roster is the city's, not the run's: same merchants for every seed.
        self._rng = stream(0, "payments-roster", pack.name)
        self._p = p
        self._channels = channels
        self._medians, self._sds = dict(p.amount_median), dict(p.amount_log_sd)
        self.streams: tuple[list[_Merchant], ...] = ([], [], [], [])
        self._weights: tuple[list[float], ...] = ([], [], [], [])
        for w in pack.wards:
            self._add_ward(w.code, w.population)

    def pickers(self) -> tuple[Picker, ...]:
        """Per stream, a Picker over its merchants' ids by weight."""
        return tuple(
            Picker([m.id for m in merchants], weights)
            for merchants, weights in zip(self.streams, self._weights, strict=True)
        )

    def _merchant(self, mid: str, ward: str, mtype: MerchantType) -> _Merchant:
        channels = self._channels[mtype]
        return _Merchant(mid, ward, mtype, channels, self._medians[mtype], self._sds[mtype])

    def _add(self, stream_no: int, merchant: _Merchant, weight: float) -> None:
        self.streams[stream_no].append(merchant)
        self._weights[stream_no].append(weight)

    def _add_ward(self, code: str, population: int) -> None:
        """A ward's merchants: shops and stalls of skewed activity, its counter, tax, utilities."""
        p, rng = self._p, self._rng
        n = max(3, population // p.residents_per_retail_merchant)
        activity = [min(rng.paretovariate(1.5), 50.0) for _ in range(n)]
        scale = population / sum(activity)
        for i, a in enumerate(activity):
            mtype: MerchantType = "market_stall" if rng.random() < p.market_stall_share else "shop"
            self._add(RETAIL, self._merchant(f"MC-{code}-{i:04d}", code, mtype), a * scale)
        weight = float(population)
        # Fees come from the fee schedule, not from a distribution of amounts.
        fees = self._channels["public_service_fee"]
        counter = _Merchant(f"PUB-{code}", code, "public_service_fee", fees, 0, 0.0)
        self._add(PUBLIC_FEE, counter, weight)
        self._add(TAX, self._merchant(f"TAX-{code}", code, "tax"), weight)
        for suffix in ("E", "W"):
            self._add(UTILITY, self._merchant(f"UTL-{code}-{suffix}", code, "utility_bill"), weight)


class PaymentSimulator:
    """Generates ioc.payments.v1 events for one run."""

    def __init__(self, ctx: SimContext) -> None:
        p = ctx.params
        self._ctx = ctx
        self._rng = stream(ctx.seed, FEED.name)
        self._cal = ctx.calendar
        channels = _channel_pickers(p)
        roster = _Roster(ctx.pack, p, channels)
        self._fee_channels = channels["public_service_fee"]
        self._merchants = roster.streams
        self._pickers = roster.pickers()
        k = sum(w.population for w in ctx.pack.wards) / 1000 * p.volume_scale
        self._daily = (
            p.retail_payments_per_1000_per_day * k,
            p.public_fee_payments_per_1000_per_workday * k,
            p.tax_payments_per_1000_per_workday * k,
            p.utility_payments_per_1000_per_day * k,
        )
        office = office_profile()
        self._profiles = (
            normalise(interpolate_hourly(RETAIL_HOURS)),
            office,
            office,
            normalise(interpolate_hourly(UTILITY_HOURS)),
        )
        self._reference = day_start(day_number(date.fromisoformat(p.trend_reference)))
        self._events = 0
        self._prefix = f"{ctx.tag}-p"
        self._pay_prefix = f"TT-{ctx.tag[:8]}-"

    def expected(self, slot: int) -> tuple[float, float, float, float]:
        """Expected payments per stream (retail, fees, tax, utility) in one 15-minute slot."""
        day = local_day(slot)
        s = slot_of_day(slot)
        weekend = weekday_of_day(day) >= 5
        p = self._ctx.params
        f = factor_at(self._ctx.effects.payment_rate, slot)
        retail = self._daily[RETAIL] * self._profiles[RETAIL][s] * f
        if weekend:
            retail *= p.retail_weekend_factor
        open_ = self._cal.is_workday(day)
        fee = self._daily[PUBLIC_FEE] * self._profiles[PUBLIC_FEE][s] * f if open_ else 0.0
        tax = self._daily[TAX] * self._profiles[TAX][s] * f if open_ else 0.0
        utility = self._daily[UTILITY] * self._profiles[UTILITY][s]
        return retail, fee, tax, utility

    def items(self) -> Iterator[Item]:
        """Events with start <= event_time < end, in time order."""
        start, end = self._ctx.start, self._ctx.end
        slot = start - start % SLOT
        while end is None or slot < end:
            yield from self._slot_items(slot, self._arrivals(slot))
            slot += SLOT

    def _arrivals(self, slot: int) -> list[_Arrival]:
        """The slot's payments, in time order; the merchant is drawn with the time."""
        rng = self._rng
        rand = rng.random
        arrivals: list[_Arrival] = []
        for stream_no, lam in enumerate(self.expected(slot)):
            if lam <= 0.0:
                continue
            cum = self._pickers[stream_no].cum
            for _ in range(poisson(rng, lam)):
                arrivals.append((slot + int(rand() * SLOT), stream_no, bisect_right(cum, rand())))
        arrivals.sort()
        return arrivals

    def _slot_items(self, slot: int, arrivals: list[_Arrival]) -> Iterator[Item]:
        """One slot's events; arrivals outside the run's span are drawn but not emitted."""
        # The hot path of the whole simulator: locals and inlined draws on purpose.
        ctx, p = self._ctx, self._ctx.params
        start, end = ctx.start, ctx.end
        rand = self._rng.random
        normal = normal_table()
        n_normal = len(normal)
        fee_sched = p.public_fee_schedule
        fee_names, fee_cum = self._fee_channels.names, self._fee_channels.cum
        failed, refunded = p.failed_share, p.failed_share + p.refunded_share
        prefix, pay_prefix, merchants = self._prefix, self._pay_prefix, self._merchants
        cashless = trend_share(
            p.public_cashless_share,
            p.public_cashless_growth_per_year,
            p.public_cashless_bounds,
            slot,
            self._reference,
        )
        tax_cashless = min(cashless + p.tax_cashless_bonus, 1.0)
        n = self._events
        for t, stream_no, idx in arrivals:
            if t < start or (end is not None and t >= end):
                continue
            m = merchants[stream_no][idx]
            if stream_no == PUBLIC_FEE:
                amount = fee_sched[int(rand() * len(fee_sched))]
                channel = fee_names[bisect_right(fee_cum, rand())] if rand() < cashless else "cash"
            else:
                z = normal[int(rand() * n_normal)]
                amount = round(math.exp(m.median + m.sd * z) / 1000) * 1000
                amount = min(max(amount, 1000), 4_000_000_000)
                if stream_no == TAX and rand() >= tax_cashless:
                    channel = "cash"
                else:
                    channel = m.channel_names[bisect_right(m.channel_cum, rand())]
            u = rand()
            # Refunds are a retail practice; fees, tax and bills are not refunded here.
            status: PaymentStatus = "succeeded"
            if u < failed:
                status = "failed"
            elif u < refunded and stream_no == RETAIL:
                status = "refunded"
            n += 1
            ev = PaymentEvent(
                event_id=f"{prefix}{n:09x}",
                event_time=to_datetime(t),
                payment_id=f"{pay_prefix}{n:09d}",
                merchant_id=m.id,
                ward_code=m.ward,
                merchant_type=m.type,
                channel=cast(PaymentChannel, channel),
                amount_vnd=amount,
                status=status,
            )
            self._events = n
            yield (t, INDEX, TOPIC, m.key, encode_event(ev), m.ward)
