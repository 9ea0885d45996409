"""City pack facts (map step): wards and 2025 units read from CSV files and cross-checked."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ioc.core.errors import IocError

WARD_CODE_RE = re.compile(r"^\d{5}$")
KINDS = ("phuong", "xa", "dac_khu")
WARD_COLUMNS = ("code", "name", "kind", "population", "area_km2", "lat", "lon", "successors")
UNIT_COLUMNS = ("code", "name", "lat", "lon", "constituents", "population_2019_whole")


class PackError(IocError):
    """A pack, or a boundary file given for it, is unusable; the message is one line.

    It is a CommandError so that any command that loads a pack reports it as one line.
    """


@dataclass(frozen=True)
class Ward:
    """One ward (phường) or commune (xã) as it was before the 1 July 2025 reform."""

    code: str
    name: str
    kind: str
    population: int
    area_km2: float
    lat: float
    lon: float
    successors: tuple[str, ...]


@dataclass(frozen=True)
class Unit2025:
    """One unit of the two-level local government from 1 July 2025 and the wards it took in."""

    code: str
    name: str
    lat: float
    lon: float
    constituents: tuple[str, ...]
    # 2019 population of the units that joined whole (split wards excluded, units from
    # outside the pack included), as published with the reform.
    population_2019_whole: int = 0


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise PackError(f"{path}: missing column(s) {', '.join(missing)}")
            return list(reader)
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None


def _code(path: Path, line: int, raw: str) -> str:
    code = raw.strip()
    if not WARD_CODE_RE.match(code):
        raise PackError(f"{path}:{line}: code {raw!r} is not a 5-digit GSO code")
    return code


def _codes(path: Path, line: int, raw: str) -> tuple[str, ...]:
    codes = tuple(_code(path, line, part) for part in raw.split(";") if part.strip())
    if not codes:
        raise PackError(f"{path}:{line}: empty code list")
    return codes


def _number(path: Path, line: int, column: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise PackError(f"{path}:{line}: {column}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise PackError(f"{path}:{line}: {column}={raw!r} is not finite")
    return value


def _lat_lon(path: Path, line: int, row: dict[str, str]) -> tuple[float, float]:
    lat = _number(path, line, "lat", row["lat"])
    lon = _number(path, line, "lon", row["lon"])
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise PackError(f"{path}:{line}: lat/lon {lat}, {lon} out of range")
    return lat, lon


def read_wards(path: Path) -> tuple[Ward, ...]:
    """The wards of wards.csv, sorted by code; PackError on any bad row."""
    wards: dict[str, Ward] = {}
    for line, row in enumerate(_read_rows(path, WARD_COLUMNS), start=2):
        code = _code(path, line, row["code"])
        if code in wards:
            raise PackError(f"{path}:{line}: duplicate ward code {code}")
        kind = row["kind"].strip()
        if kind not in KINDS:
            raise PackError(f"{path}:{line}: kind {kind!r} is not one of {', '.join(KINDS)}")
        population = _number(path, line, "population", row["population"])
        area = _number(path, line, "area_km2", row["area_km2"])
        if population < 0 or population != int(population):
            raise PackError(f"{path}:{line}: population {row['population']!r} is not a count")
        if area <= 0:
            raise PackError(f"{path}:{line}: area_km2 must be positive")
        lat, lon = _lat_lon(path, line, row)
        wards[code] = Ward(
            code=code,
            name=row["name"].strip(),
            kind=kind,
            population=int(population),
            area_km2=area,
            lat=lat,
            lon=lon,
            successors=_codes(path, line, row["successors"]),
        )
    if not wards:
        raise PackError(f"{path}: no wards")
    return tuple(wards[c] for c in sorted(wards))


def read_units(path: Path) -> tuple[Unit2025, ...]:
    """The 2025 units of units_2025.csv, sorted by code; PackError on any bad row."""
    units: dict[str, Unit2025] = {}
    for line, row in enumerate(_read_rows(path, UNIT_COLUMNS), start=2):
        code = _code(path, line, row["code"])
        if code in units:
            raise PackError(f"{path}:{line}: duplicate unit code {code}")
        lat, lon = _lat_lon(path, line, row)
        population = _number(path, line, "population_2019_whole", row["population_2019_whole"])
        units[code] = Unit2025(
            code=code,
            name=row["name"].strip(),
            lat=lat,
            lon=lon,
            constituents=tuple(sorted(_codes(path, line, row["constituents"]))),
            population_2019_whole=int(population),
        )
    return tuple(units[c] for c in sorted(units))


def check_mapping(wards: tuple[Ward, ...], units: tuple[Unit2025, ...]) -> None:
    """Both directions of the 2025 mapping must agree: successors <-> constituents."""
    unit_codes = {u.code for u in units}
    ward_codes = {w.code for w in wards}
    unknown = sorted({s for w in wards for s in w.successors} - unit_codes)
    if unknown:
        raise PackError(f"successor code(s) not in units_2025.csv: {', '.join(unknown)}")
    stray = sorted({c for u in units for c in u.constituents} - ward_codes)
    if stray:
        raise PackError(f"constituent code(s) not in wards.csv: {', '.join(stray)}")
    from_wards = {(w.code, s) for w in wards for s in w.successors}
    from_units = {(c, u.code) for u in units for c in u.constituents}
    mismatch = sorted(from_wards ^ from_units)
    if mismatch:
        pairs = ", ".join(f"{old}->{new}" for old, new in mismatch)
        raise PackError(f"wards.csv successors and units_2025.csv constituents disagree: {pairs}")


@dataclass(frozen=True)
class WaterDisk:
    """A disk of open water cut out of the schematic outline (a bay, a strait between islands)."""

    name: str
    lat: float
    lon: float
    radius_km: float


def read_water(path: Path) -> tuple[WaterDisk, ...]:
    """The optional water.csv of a pack (no file: no water cut out)."""
    if not path.exists():
        return ()
    disks = []
    for line, row in enumerate(_read_rows(path, ("name", "lat", "lon", "radius_km")), start=2):
        lat, lon = _lat_lon(path, line, row)
        radius = _number(path, line, "radius_km", row["radius_km"])
        if radius <= 0:
            raise PackError(f"{path}:{line}: radius_km must be positive")
        disks.append(WaterDisk(row["name"].strip(), lat, lon, radius))
    return tuple(disks)
