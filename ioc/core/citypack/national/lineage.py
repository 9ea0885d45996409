"""Which pre-reform units each 2025 commune was made from, and how an old unit's counts divide.

The rule for an old unit split between several new ones (471 of 10,040; the package gives no
shares): its events are shared in proportion to the areas of the new units it went into, the
only size the data hold for the pieces. An old unit that went whole into one new unit counts
there in full. The shares of every old unit sum to 1, so counts are conserved.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class OldLink:
    """One row of lineage.csv: a pre-reform unit and one 2025 unit it went (partly) into."""

    old_code: str
    old_name: str
    old_kind: str
    old_district: str
    old_province_code: str
    new_code: str
    divided: bool
    default: bool


def read_lineage(directory: Path) -> tuple[OldLink, ...]:
    """The national pack's lineage.csv."""
    with (directory / "lineage.csv").open(encoding="utf-8", newline="") as fh:
        return tuple(
            OldLink(
                r["old_code"],
                r["old_name"],
                r["old_kind"],
                r["old_district"],
                r["old_province_code"],
                r["new_code"],
                r["divided"] == "1",
                r["default"] == "1",
            )
            for r in csv.DictReader(fh)
        )


def shares(links: tuple[OldLink, ...], area_km2: dict[str, float]) -> dict[str, dict[str, float]]:
    """old code -> {new code: share of its counts}, each old unit's shares summing to 1."""
    parts: dict[str, list[str]] = defaultdict(list)
    for link in links:
        parts[link.old_code].append(link.new_code)
    out: dict[str, dict[str, float]] = {}
    for old, news in parts.items():
        total = sum(area_km2[n] for n in news)
        out[old] = {n: area_km2[n] / total for n in sorted(news)}
    return out


def made_from(links: tuple[OldLink, ...], new_code: str) -> tuple[OldLink, ...]:
    """The old units a 2025 unit was made from (the lineage shown on its page)."""
    return tuple(k for k in links if k.new_code == new_code)
