"""Population estimates for communes: no public source gives them, so they are derived, and say so.

Provinces: the figures of Resolution 202/2025/QH15 for the 23 merged provinces count temporary
residents (with the 11 unchanged provinces' figures they add up to 113.6 M), so those 23 are
scaled until the 34 sum to the GSO total of 1 April 2024; the 11 others are kept.

Communes: the province's people shared in proportion to area ** AREA_POWER, a ward (phường)
counting WARD_FACTOR times a commune (xã, đặc khu). Both come from a least-squares fit of
log(population) on log(area) and the unit's kind over the 71 units with 2019 census figures and
areas at hand (Hạ Long's 33, Vũng Tàu's and Nha Trang's): units were drawn to hold people, not
land, so population hardly grows with area. The fit puts 66 % of those units within a factor 2
of their census figure; sharing by area alone (a ward 24x as dense) only 38 %. Largest
remainders keep every province's sum exact.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ioc.core.citypack.model import PackError
from ioc.core.citypack.national.source import NewUnit

GSO_TOTAL_2024 = 101_112_656
SCALED_SOURCE = "Resolution 202"
AREA_POWER = -0.067
WARD_FACTOR = 2.35


@dataclass(frozen=True)
class ProvinceFigures:
    """A province's published area and population, and where that figure comes from."""

    code: str
    name: str
    area_km2: float
    population: int
    source: str


def read_province_figures(path: Path) -> tuple[ProvinceFigures, ...]:
    """The provinces_2025.csv facts file, by code."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return tuple(
            sorted(
                (
                    ProvinceFigures(
                        r["province_code"],
                        r["province"],
                        float(r["area_km2"]),
                        int(r["population"]),
                        r["population_source"],
                    )
                    for r in rows
                ),
                key=lambda p: p.code,
            )
        )
    except (OSError, KeyError, ValueError) as exc:
        raise PackError(f"cannot read {path}: {exc}") from None


def _shares(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights`, in whole people, summing exactly to `total`."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    counts = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def province_estimates(figures: Sequence[ProvinceFigures]) -> dict[str, int]:
    """Each province's population: the resolution's figures scaled so that all sum to the GSO
    total, the others as published."""
    scaled = [f for f in figures if f.source.startswith(SCALED_SOURCE)]
    kept = {f.code: f.population for f in figures if f not in scaled}
    rest = GSO_TOTAL_2024 - sum(kept.values())
    shares = _shares(rest, [float(f.population) for f in scaled])
    return dict(
        sorted({**kept, **{f.code: n for f, n in zip(scaled, shares, strict=True)}}.items())
    )


def _weight(unit: NewUnit) -> float:
    area = unit.area_km2 or 0.0
    return float(area**AREA_POWER) * (WARD_FACTOR if unit.kind == "phuong" else 1.0)


def commune_estimates(units: Sequence[NewUnit], provinces: dict[str, int]) -> dict[str, int]:
    """Each commune's estimated population; every unit must have a positive area."""
    out: dict[str, int] = {}
    for code, total in sorted(provinces.items()):
        members = [u for u in units if u.province_code == code]
        if not members:
            raise PackError(f"province {code} has no communes")
        for unit, n in zip(members, _shares(total, [_weight(u) for u in members]), strict=True):
            out[unit.code] = n
    return out
