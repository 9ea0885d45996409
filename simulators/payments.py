"""Simulator step of the payments feed: cashless payments at merchants and public counters.

Retail payments (market stalls, shops) follow the day with an evening-market peak; fees and tax
are paid at the ward's one-stop counter in office hours, in cash or cashless with a cashless
share rising over the years; utility bills are paid through the day. Volumes follow population.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterator
from datetime import date
from typing import cast

from ioc.core.contracts import MERCHANT_TYPES, PAYMENT_CHANNELS, PaymentEvent, encode_event
from ioc.core.contracts.payments import MerchantType, PaymentChannel, PaymentStatus
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
from simulators.timebase import day_number, day_start, local_day, to_datetime, weekday_of_day

FEED = "payments"
TOPIC = "ioc.payments.v1"
INDEX = 1

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

# Streams of arrivals, each with its own profile and merchants.
RETAIL, PUBLIC_FEE, TAX, UTILITY = range(4)


class _Merchant:
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


class PaymentSimulator:
    """Generates ioc.payments.v1 events for one run."""

    def __init__(self, ctx: SimContext) -> None:
        p = ctx.params
        self._ctx = ctx
        self._rng = stream(ctx.seed, FEED)
        self._cal = ctx.calendar
        for mix in (
            p.market_stall_channels,
            p.shop_channels,
            p.public_fee_channels,
            p.tax_channels,
            p.utility_channels,
        ):
            bad = {name for name, _ in mix} - set(PAYMENT_CHANNELS)
            if bad:
                raise ValueError(f"unknown payment channel(s) in parameters: {sorted(bad)}")
        medians, sds = dict(p.amount_median), dict(p.amount_log_sd)
        chan = {
            "market_stall": Picker.of(p.market_stall_channels),
            "shop": Picker.of(p.shop_channels),
            "public_service_fee": Picker.of(p.public_fee_channels),
            "tax": Picker.of(p.tax_channels),
            "utility_bill": Picker.of(p.utility_channels),
        }
        if set(chan) != set(MERCHANT_TYPES):
            raise ValueError("merchant types must be those of the contract")
        # The merchant roster is the city's, not the run's: same merchants for every seed.
        roster = stream(0, "payments-roster", ctx.pack.name)
        self_fee = chan["public_service_fee"]
        wards = ctx.pack.wards
        population = sum(w.population for w in wards)
        self._population = population
        retail: list[_Merchant] = []
        retail_w: list[float] = []
        public: list[_Merchant] = []
        tax: list[_Merchant] = []
        utility: list[_Merchant] = []
        ward_w: list[float] = []
        for w in wards:
            n = max(3, w.population // p.residents_per_retail_merchant)
            activity = [min(roster.paretovariate(1.5), 50.0) for _ in range(n)]
            scale = w.population / sum(activity)
            for i, a in enumerate(activity):
                mtype: MerchantType = (
                    "market_stall" if roster.random() < p.market_stall_share else "shop"
                )
                retail.append(
                    _Merchant(
                        f"MC-{w.code}-{i:04d}",
                        w.code,
                        mtype,
                        chan[mtype],
                        medians[mtype],
                        sds[mtype],
                    )
                )
                retail_w.append(a * scale)
            public.append(
                _Merchant(f"PUB-{w.code}", w.code, "public_service_fee", self_fee, 0, 0.0)
            )
            tax.append(
                _Merchant(f"TAX-{w.code}", w.code, "tax", chan["tax"], medians["tax"], sds["tax"])
            )
            for suffix in ("E", "W"):
                utility.append(
                    _Merchant(
                        f"UTL-{w.code}-{suffix}",
                        w.code,
                        "utility_bill",
                        chan["utility_bill"],
                        medians["utility_bill"],
                        sds["utility_bill"],
                    )
                )
            ward_w.append(float(w.population))
        self._fee_channels = self_fee
        self._merchants = (retail, public, tax, utility)
        self._pickers = (
            Picker([m.id for m in retail], retail_w),
            Picker([m.id for m in public], ward_w),
            Picker([m.id for m in tax], ward_w),
            Picker([m.id for m in utility], [x for x in ward_w for _ in (0, 1)]),
        )
        k = population / 1000 * p.volume_scale
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
        # The hot path of the whole simulator: locals and inlined draws on purpose.
        ctx, rng, p = self._ctx, self._rng, self._ctx.params
        start, end = ctx.start, ctx.end
        rand = rng.random
        normal = normal_table()
        n_normal = len(normal)
        fee_sched = p.public_fee_schedule
        fee_names, fee_cum = self._fee_channels.names, self._fee_channels.cum
        failed, refunded = p.failed_share, p.failed_share + p.refunded_share
        prefix, pay_prefix = self._prefix, self._pay_prefix
        merchants, pickers = self._merchants, self._pickers
        n = self._events
        slot = start - start % SLOT
        while end is None or slot < end:
            expected = self.expected(slot)
            cashless = trend_share(
                p.public_cashless_share,
                p.public_cashless_growth_per_year,
                p.public_cashless_bounds,
                slot,
                self._reference,
            )
            tax_cashless = min(cashless + p.tax_cashless_bonus, 1.0)
            arrivals: list[tuple[int, int, int]] = []
            for stream_no, lam in enumerate(expected):
                if lam <= 0.0:
                    continue
                cum = pickers[stream_no].cum
                for _ in range(poisson(rng, lam)):
                    arrivals.append(
                        (slot + int(rand() * SLOT), stream_no, bisect_right(cum, rand()))
                    )
            arrivals.sort()
            for t, stream_no, idx in arrivals:
                if t < start or (end is not None and t >= end):
                    continue
                m = merchants[stream_no][idx]
                mtype = m.type
                if stream_no == PUBLIC_FEE:
                    amount = fee_sched[int(rand() * len(fee_sched))]
                    channel = (
                        fee_names[bisect_right(fee_cum, rand())] if rand() < cashless else "cash"
                    )
                else:
                    z = normal[int(rand() * n_normal)]
                    amount = round(math.exp(m.median + m.sd * z) / 1000) * 1000
                    amount = min(max(amount, 1000), 4_000_000_000)
                    if stream_no == TAX and rand() >= tax_cashless:
                        channel = "cash"
                    else:
                        channel = m.channel_names[bisect_right(m.channel_cum, rand())]
                u = rand()
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
                    merchant_type=mtype,
                    channel=cast(PaymentChannel, channel),
                    amount_vnd=amount,
                    status=status,
                )
                self._events = n
                yield (t, INDEX, TOPIC, m.key, encode_event(ev), m.ward)
            slot += SLOT
