"""Checking the package's centres and areas before trusting them, and what is used instead.

A new unit's centre is compared with the mean centre of the pre-reform units it was made from
(those that joined whole; all of them where every one was divided). Further than
CENTRE_LIMIT_KM apart, one of the two is wrong; both come from a geocoder. The package's centre
is kept for a special zone (đặc khu: its islands lie far from the mainland points the old units
were geocoded to), where the old centres are one point the geocoder gave many units, and where
it lies inside its old units' boxes; otherwise the derived centre is used. A missing or zero
area becomes the median area of the units of the same kind in the province; a province whose
communes' areas add up to more than 10 % off its official area has them all scaled to it (the
package's areas of ex-Thái Bình, Hà Nam and Nam Định communes are too large). Every decision
is a Correction row in the pack's corrections.csv.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ioc.core.citypack.national.source import Link, NewUnit, OldUnit, Source

CENTRE_LIMIT_KM = 40.0
BOX_MARGIN_DEG = 0.02  # about 2 km: the geocoder's boxes are tight around a point
SWAP_KM = 15.0
# Beyond this, a province's communes' areas disagree with its official area, and are scaled.
AREA_SLACK = 0.10
# A point this many old units share is the geocoder's fallback (a district), not their centre.
SHARED_POINT = 3
EARTH_KM = 6371.0088


@dataclass(frozen=True)
class Correction:
    """One flagged value: what the package says, what the pack uses, and why."""

    code: str
    name: str
    province_code: str
    field: str
    package: str
    used: str
    distance_km: float | None
    reason: str


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(h))


def _sources(links: Sequence[Link], old: dict[str, OldUnit]) -> dict[str, list[OldUnit]]:
    whole: dict[str, list[OldUnit]] = defaultdict(list)
    every: dict[str, list[OldUnit]] = defaultdict(list)
    for link in links:
        every[link.new_code].append(old[link.old_code])
        if not link.divided:
            whole[link.new_code].append(old[link.old_code])
    return {code: whole.get(code) or units for code, units in every.items()}


def derived_centre(units: Sequence[OldUnit]) -> tuple[float, float]:
    """The mean centre of the old units a new one was made from."""
    return (
        round(sum(u.lat for u in units) / len(units), 5),
        round(sum(u.lon for u in units) / len(units), 5),
    )


def _in_boxes(unit: NewUnit, sources: Sequence[OldUnit]) -> bool:
    m = BOX_MARGIN_DEG
    return any(
        s.bounds is not None
        and s.bounds[0] - m <= unit.lat <= s.bounds[2] + m
        and s.bounds[1] - m <= unit.lon <= s.bounds[3] + m
        for s in sources
    )


def _swapped_with(
    unit: NewUnit, far: dict[str, tuple[float, float]], by_code: dict[str, NewUnit]
) -> str | None:
    """The other far unit whose derived centre is where this one's package centre is."""
    for code, (lat, lon) in far.items():
        if code != unit.code and distance_km(unit.lat, unit.lon, lat, lon) < SWAP_KM:
            other = by_code[code]
            mine = far[unit.code]
            if distance_km(other.lat, other.lon, mine[0], mine[1]) < SWAP_KM:
                return code
    return None


def _centre_reason(
    unit: NewUnit, sources: Sequence[OldUnit], swapped: str | None, shared: set[tuple[float, float]]
) -> tuple[bool, str]:
    """(keep the package's centre?, why)."""
    if unit.kind == "dac_khu":
        return True, "kept: a special zone's islands lie far from its old units' mainland points"
    if all((s.lat, s.lon) in shared for s in sources):
        return True, "kept: its old units' centres are one point the geocoder gave many units"
    if _in_boxes(unit, sources):
        return True, "kept: inside its old units' boxes; their centres are the ones off"
    if swapped is not None:
        return False, f"derived: package centres of {unit.code} and {swapped} are swapped"
    return False, "derived: package centre lies outside every old unit's box"


def check_centres(source: Source) -> tuple[dict[str, tuple[float, float]], list[Correction]]:
    """The centre to use for every flagged unit, and a Correction for each one flagged."""
    old = {u.code: u for u in source.old}
    sources = _sources(source.links, old)
    by_code = {u.code: u for u in source.new}
    far: dict[str, tuple[float, float]] = {}
    distance: dict[str, float] = {}
    for unit in source.new:
        lat, lon = derived_centre(sources[unit.code])
        d = distance_km(unit.lat, unit.lon, lat, lon)
        if d > CENTRE_LIMIT_KM:
            far[unit.code], distance[unit.code] = (lat, lon), d
    points = Counter((u.lat, u.lon) for u in source.old)
    shared = {p for p, n in points.items() if n >= SHARED_POINT}
    used: dict[str, tuple[float, float]] = {}
    corrections = []
    for code in sorted(far):
        unit = by_code[code]
        swapped = _swapped_with(unit, far, by_code)
        keep, reason = _centre_reason(unit, sources[code], swapped, shared)
        centre = (unit.lat, unit.lon) if keep else far[code]
        used[code] = centre
        corrections.append(
            Correction(
                code,
                unit.name,
                unit.province_code,
                "centre",
                f"{unit.lat},{unit.lon}",
                f"{centre[0]},{centre[1]}",
                round(distance[code], 1),
                reason,
            )
        )
    return used, corrections


def check_areas(units: Sequence[NewUnit]) -> tuple[dict[str, float], list[Correction]]:
    """A median area for every unit whose area is missing or zero, with a Correction each."""
    known: dict[tuple[str, str], list[float]] = defaultdict(list)
    for u in units:
        if u.area_km2:
            known[(u.province_code, u.kind)].append(u.area_km2)
    used: dict[str, float] = {}
    corrections = []
    for u in units:
        if u.area_km2:
            continue
        area = round(statistics.median(known[(u.province_code, u.kind)]), 2)
        used[u.code] = area
        corrections.append(
            Correction(
                u.code,
                u.name,
                u.province_code,
                "area_km2",
                "" if u.area_km2 is None else str(u.area_km2),
                str(area),
                None,
                f"estimated: {'missing' if u.area_km2 is None else 'zero'} in the package; "
                f"median of the province's {u.kind} units",
            )
        )
    return used, corrections


def check_province_areas(
    units: Sequence[NewUnit], official: Mapping[str, tuple[str, float]]
) -> tuple[dict[str, float], list[Correction]]:
    """A scale for each province whose communes' areas add up to more than AREA_SLACK off its
    official area (code -> (name, km²)), with a Correction each."""
    summed: dict[str, float] = defaultdict(float)
    for u in units:
        summed[u.province_code] += u.area_km2 or 0.0
    scales: dict[str, float] = {}
    notes = []
    for code in sorted(summed):
        name, area = official[code]
        if abs(summed[code] / area - 1) <= AREA_SLACK:
            continue
        scales[code] = area / summed[code]
        notes.append(
            Correction(
                code,
                name,
                code,
                "area_km2 of every commune",
                f"{summed[code]:.0f} in all",
                f"x {scales[code]:.4f} = {area:.0f}",
                None,
                f"scaled: the communes' areas add up to {summed[code] / area - 1:+.1%} of the "
                "province's official area",
            )
        )
    return scales, notes


def corrected(
    source: Source, official: Mapping[str, tuple[str, float]]
) -> tuple[tuple[NewUnit, ...], list[Correction]]:
    """The new units with the corrections applied, and the corrections."""
    centres, centre_notes = check_centres(source)
    areas, area_notes = check_areas(source.new)
    filled = [replace(u, area_km2=areas.get(u.code, u.area_km2)) for u in source.new]
    scales, scale_notes = check_province_areas(filled, official)
    units = []
    for u in filled:
        lat, lon = centres.get(u.code, (u.lat, u.lon))
        area = round((u.area_km2 or 0.0) * scales.get(u.province_code, 1.0), 2)
        units.append(replace(u, lat=lat, lon=lon, area_km2=area))
    notes = sorted(centre_notes + area_notes + scale_notes, key=lambda c: (c.code, c.field))
    return tuple(units), notes
