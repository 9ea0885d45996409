"""The national pack and any province of it: `vn` (34 provinces), `vn-22` or `vn-quang-ninh`.

The unit of a national pack is the commune-level unit of 1 July 2025 (phường, xã, đặc khu);
each is its own successor, so every part of the product that speaks of wards works unchanged.
Populations are estimates (see population.py) and the pack says so.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioc.core.citypack.model import PackError, Unit2025, Ward
from ioc.core.citypack.search import fold
from ioc.core.citypack.shapes import read_boundaries

NATIONAL = "vn"
_SELECTION = re.compile(r"^vn(?:-([a-z0-9-]+))?$")


@dataclass(frozen=True)
class ProvinceInfo:
    """A province of the national pack."""

    code: str
    name: str
    short_name: str
    lat: float
    lon: float
    population: int  # estimated (scaled to the GSO total where the published one was not)


def is_national(name: str) -> bool:
    """Whether a pack name selects the national pack or one of its provinces."""
    return _SELECTION.match(name) is not None


def slug(text: str) -> str:
    """A province's name as a pack suffix: 'Quảng Ninh' -> 'quang-ninh'."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def read_provinces(directory: Path) -> tuple[ProvinceInfo, ...]:
    """The pack's provinces.csv."""
    with (directory / "provinces.csv").open(encoding="utf-8", newline="") as fh:
        return tuple(
            ProvinceInfo(
                r["code"],
                r["name"],
                r["short_name"],
                float(r["lat"]),
                float(r["lon"]),
                int(r["population_estimate"]),
            )
            for r in csv.DictReader(fh)
        )


def selected_provinces(name: str, provinces: tuple[ProvinceInfo, ...]) -> tuple[str, ...]:
    """The province codes a pack name selects; PackError listing the choices otherwise."""
    match = _SELECTION.match(name)
    if match is None:
        raise PackError(f"{name!r} is not a national pack name")
    wanted = match.group(1)
    if wanted is None:
        return tuple(p.code for p in provinces)
    for p in provinces:
        if wanted in (p.code, slug(p.short_name)):
            return (p.code,)
    choices = ", ".join(f"vn-{p.code} (vn-{slug(p.short_name)})" for p in provinces[:3])
    raise PackError(f"no province {wanted!r} in pack vn; choose by code or name: {choices}, ...")


def read_communes(directory: Path, provinces: tuple[str, ...]) -> tuple[list[Ward], dict[str, str]]:
    """The communes of these provinces as wards, and each one's province code."""
    wards: list[Ward] = []
    province_of: dict[str, str] = {}
    with (directory / "communes.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["province_code"] not in provinces:
                continue
            wards.append(
                Ward(
                    code=r["code"],
                    name=r["name"],
                    kind=r["kind"],
                    population=int(r["population_estimate"]),
                    area_km2=float(r["area_km2"]),
                    lat=float(r["lat"]),
                    lon=float(r["lon"]),
                    successors=(r["code"],),
                )
            )
            province_of[r["code"]] = r["province_code"]
    return wards, province_of


def units_of(wards: list[Ward]) -> list[Unit2025]:
    """Each commune as the 2025 unit it is (its own only constituent)."""
    return [Unit2025(w.code, w.name, w.lat, w.lon, (w.code,), 0) for w in wards]


def shapes_file(directory: Path, province: str) -> Path:
    """Where a province's schematic shapes are kept."""
    return directory / "shapes" / f"{province}.geojson"


def read_shapes(directory: Path, provinces: tuple[str, ...]) -> dict[str, Any]:
    """The schematic shapes of these provinces' communes; PackError naming the build command."""
    shapes: dict[str, Any] = {}
    for code in provinces:
        path = shapes_file(directory, code)
        if not path.is_file():
            raise PackError(f"{path} is missing; run `ioc citypack build --pack vn-{code}`")
        shapes.update(read_boundaries(path, "ward_code"))
    return shapes
