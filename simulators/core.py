"""Simulator step of the data path: what the four generators share (items, seeds, draws, ids)."""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

from simulators.params import Mix
from simulators.timebase import DAY, OFFSET

# One emitted message: (event time in epoch seconds, feed index, base topic, key, value, ward).
# Feed indexes are distinct across generators, so merging by tuple order never compares bytes.
Item = tuple[int, int, str, bytes | None, bytes, str | None]

SLOT = 900  # arrival processes are piecewise constant over 15-minute slots
SLOTS_PER_DAY = DAY // SLOT


def derive_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed for one named random stream; independent of PYTHONHASHSEED."""
    text = "|".join((str(seed), *parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def stream(seed: int, *parts: str) -> random.Random:
    """The private random stream of one feed or scenario."""
    return random.Random(derive_seed(seed, *parts))  # noqa: S311 - simulation, not security


def run_tag(signature: str) -> str:
    """12 hex digits naming a run (seed, start, options): ids differ between different runs."""
    return hashlib.blake2b(signature.encode(), digest_size=6).hexdigest()


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw; exact below 30, a rounded normal above (plenty for arrival counts)."""
    if lam <= 0.0:
        return 0
    if lam < 30.0:
        limit = math.exp(-lam)
        k = 0
        p = rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


class Picker:
    """Draws one of `names` by weight with one random() and a bisect."""

    __slots__ = ("cum", "names")

    def __init__(self, names: Sequence[str], weights: Sequence[float]) -> None:
        if len(names) != len(weights) or not names:
            raise ValueError("names and weights must be non-empty and of equal length")
        total = 0.0
        for w in weights:
            if w < 0:
                raise ValueError("weights must be >= 0")
            total += w
        if total <= 0:
            raise ValueError("weights must not all be zero")
        cum: list[float] = []
        acc = 0.0
        for w in weights:
            acc += w
            cum.append(acc / total)
        # random() < 1, so a last bound above 1 makes bisect always land on a valid index.
        cum[-1] = 2.0
        self.names = tuple(names)
        self.cum = cum

    @classmethod
    def of(cls, mix: Mix) -> Picker:
        """From (name, weight) pairs."""
        return cls([n for n, _ in mix], [w for _, w in mix])

    def index(self, rng: random.Random) -> int:
        """Index of the drawn name."""
        return bisect_right(self.cum, rng.random())

    def pick(self, rng: random.Random) -> str:
        """The drawn name."""
        return self.names[bisect_right(self.cum, rng.random())]


@lru_cache(maxsize=1)
def normal_table(size: int = 4096) -> tuple[float, ...]:
    """Standard-normal quantiles at (i + 0.5) / size: a draw is one random() and an index,
    several times cheaper than random.gauss and fine for amounts rounded to 1,000 VND."""
    dist = NormalDist()
    return tuple(dist.inv_cdf((i + 0.5) / size) for i in range(size))


def slot_times(rng: random.Random, slot: int, n: int) -> list[int]:
    """n arrival times uniform in [slot, slot + SLOT), sorted."""
    return sorted([slot + int(rng.random() * SLOT) for _ in range(n)])


def slot_of_day(t: int) -> int:
    """Index of the 15-minute slot within the local day (0..95)."""
    return ((t + OFFSET) % DAY) // SLOT


def interpolate_hourly(weights: Sequence[float]) -> tuple[float, ...]:
    """96 slot weights from 24 hourly weights, each slot carrying a quarter of its hour."""
    if len(weights) != 24:
        raise ValueError("24 hourly weights are needed")
    return tuple(weights[s // 4] / 4.0 for s in range(SLOTS_PER_DAY))


def normalise(values: Sequence[float]) -> tuple[float, ...]:
    """Values scaled to sum to 1."""
    total = float(sum(values))
    if total <= 0:
        raise ValueError("cannot normalise an all-zero profile")
    return tuple(v / total for v in values)


def trend_share(
    base: float, growth_per_year: float, bounds: tuple[float, float], t: int, reference: int
) -> float:
    """A share rising linearly with time from `base` at `reference`, clamped to bounds."""
    years = (t - reference) / (365.25 * DAY)
    return min(max(base + growth_per_year * years, bounds[0]), bounds[1])


@dataclass(frozen=True)
class Window:
    """A half-open span [start, end) of simulated time, with an optional factor."""

    start: int
    end: int
    factor: float = 1.0

    def __contains__(self, t: int) -> bool:
        return self.start <= t < self.end


def factor_at(windows: Sequence[Window], t: int) -> float:
    """Product of the factors of the windows holding t."""
    f = 1.0
    for w in windows:
        if w.start <= t < w.end:
            f *= w.factor
    return f


def office_profile() -> tuple[float, ...]:
    """96 slot weights (sum 1) for counter intake: mid-morning peak, quieter afternoon."""
    half_hours = {
        (7, 30): 0.7, (8, 0): 1.1, (8, 30): 1.1, (9, 0): 1.2, (9, 30): 1.2, (10, 0): 1.0,
        (10, 30): 1.0, (11, 0): 0.6, (13, 30): 0.6, (14, 0): 0.9, (14, 30): 0.9, (15, 0): 0.8,
        (15, 30): 0.8, (16, 0): 0.5, (16, 30): 0.5,
    }  # fmt: skip
    weights = [half_hours.get((s // 4, 30 * ((s % 4) // 2)), 0.0) for s in range(SLOTS_PER_DAY)]
    return normalise(weights)


def morning_share(profile: Sequence[float]) -> float:
    """Share of a day profile that falls before noon."""
    return float(sum(profile[: SLOTS_PER_DAY // 2]))
