"""City pack (map step): wards, their shapes and 2025 successors, loaded once per process."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ioc.core.citypack.lookup import WardLocator
from ioc.core.citypack.model import (
    PackError,
    Unit2025,
    Ward,
    check_mapping,
    read_units,
    read_wards,
)
from ioc.core.citypack.national.load import (
    NATIONAL,
    ProvinceInfo,
    is_national,
    read_communes,
    read_provinces,
    read_shapes,
    selected_provinces,
    units_of,
)
from ioc.core.citypack.shapes import feature_collection, match_pack, read_boundaries

PACKS_DIR = Path(__file__).resolve().parent.parent / "packs"
SHAPES_FILE = "shapes.geojson"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class CityPack:
    """Wards before the 1 July 2025 reform, their shapes, and the units that replaced them."""

    def __init__(
        self,
        name: str,
        title: str,
        wards: Sequence[Ward],
        units_2025: Sequence[Unit2025],
        shapes: dict[str, Any],
        shapes_source: str,
        *,
        province_of: dict[str, str] | None = None,
        provinces: Sequence[ProvinceInfo] = (),
        population_estimated: bool = False,
    ) -> None:
        self.name = name
        self.title = title
        self.wards: tuple[Ward, ...] = tuple(sorted(wards, key=lambda w: w.code))
        self.units_2025: tuple[Unit2025, ...] = tuple(sorted(units_2025, key=lambda u: u.code))
        self.shapes_source = shapes_source  # "schematic" or the user's boundary file
        self._by_code = {w.code: w for w in self.wards}
        self._units = {u.code: u for u in self.units_2025}
        self._shapes = dict(shapes)
        self.codes: frozenset[str] = frozenset(self._by_code)
        self.population_total: int = sum(w.population for w in self.wards)
        # National packs: each commune's province, the provinces, and whether the population
        # figures are estimates (they are, for every commune of the national pack).
        self.province_of: dict[str, str] = dict(province_of or {})
        self.provinces: tuple[ProvinceInfo, ...] = tuple(provinces)
        self.population_estimated = population_estimated

    def __repr__(self) -> str:
        return f"CityPack({self.name!r}, {len(self.wards)} wards, shapes={self.shapes_source!r})"

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __len__(self) -> int:
        return len(self.wards)

    def ward(self, code: str) -> Ward:
        """The ward with this code; KeyError if the pack has none."""
        return self._by_code[code]

    def unit(self, code: str) -> Unit2025:
        """The 2025 unit with this code; KeyError if the pack has none."""
        return self._units[code]

    def successors(self, code: str) -> tuple[Unit2025, ...]:
        """The 2025 unit(s) that took over the ward (two where it was split)."""
        return tuple(self._units[c] for c in self.ward(code).successors)

    def shape(self, code: str) -> Any:
        """The ward's shapely Polygon (a MultiPolygon is possible with a user boundary file)."""
        return self._shapes[code]

    @cached_property
    def locator(self) -> WardLocator:
        """The spatial index, built on first use."""
        return WardLocator(list(self._shapes), list(self._shapes.values()))

    def ward_at(self, lat: float, lon: float) -> str | None:
        """The code of the ward covering the point, or None outside every ward."""
        return self.locator.ward_at(lat, lon)

    def wards_at(self, lats: Sequence[float], lons: Sequence[float]) -> list[str | None]:
        """ward_at for many points."""
        return self.locator.wards_at(lats, lons)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of all shapes, for fitting a map."""
        xs0, ys0, xs1, ys1 = zip(*(g.bounds for g in self._shapes.values()), strict=True)
        return min(xs0), min(ys0), max(xs1), max(ys1)

    def geojson(self) -> dict[str, Any]:
        """A fresh FeatureCollection (ward_code, name, kind, population), 5-decimal coordinates."""
        return feature_collection(self.wards, self._shapes)


def pack_dir(name: str) -> Path:
    """The directory of a shipped pack; PackError naming the available ones otherwise."""
    if is_national(name):
        return PACKS_DIR / NATIONAL
    if not _NAME_RE.match(name) or not (PACKS_DIR / name / "wards.csv").is_file():
        raise PackError(
            f"unknown city pack {name!r} (available: {', '.join(available_packs()) or 'none'})"
        )
    return PACKS_DIR / name


def available_packs() -> tuple[str, ...]:
    """Names of the packs shipped in ioc/core/packs (`vn` stands for vn-<province> too)."""
    if not PACKS_DIR.is_dir():
        return ()
    found = {p.name for p in PACKS_DIR.iterdir() if (p / "wards.csv").is_file()}
    if (PACKS_DIR / NATIONAL / "communes.csv").is_file():
        found.add(NATIONAL)
    return tuple(sorted(found))


def _title(directory: Path) -> str:
    meta = directory / "pack.toml"
    if not meta.is_file():
        return directory.name
    try:
        with meta.open("rb") as fh:
            title = tomllib.load(fh).get("title", directory.name)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{meta}: {exc}") from None
    return str(title)


def _load_national(name: str, boundary_file: str | None, code_property: str) -> CityPack:
    directory = pack_dir(name)
    provinces = read_provinces(directory)
    chosen = selected_provinces(name, provinces)
    wards, province_of = read_communes(directory, chosen)
    if boundary_file is None:
        shapes, source = read_shapes(directory, chosen), "schematic"
    else:
        path = Path(boundary_file)
        shapes, source = read_boundaries(path, code_property), boundary_file
        match_pack(path, shapes, wards)
    picked = [p for p in provinces if p.code in chosen]
    title = picked[0].short_name if len(picked) == 1 else _title(directory)
    return CityPack(
        name,
        title,
        wards,
        units_of(wards),
        shapes,
        source,
        province_of=province_of,
        provinces=picked,
        population_estimated=True,
    )


@lru_cache(maxsize=8)
def _load(name: str, boundary_file: str | None, code_property: str) -> CityPack:
    if is_national(name):
        return _load_national(name, boundary_file, code_property)
    directory = pack_dir(name)
    wards = read_wards(directory / "wards.csv")
    units = read_units(directory / "units_2025.csv")
    check_mapping(wards, units)
    if boundary_file is None:
        path, source = directory / SHAPES_FILE, "schematic"
        if not path.is_file():
            raise PackError(f"{path} is missing; run `ioc citypack build --pack {name}`")
        code_property = "ward_code"
    else:
        path, source = Path(boundary_file), boundary_file
    shapes = read_boundaries(path, code_property)
    match_pack(path, shapes, wards)
    return CityPack(name, _title(directory), wards, units, shapes, source)


def load_pack(
    name: str, boundary_file: str | Path | None = None, code_property: str = "ward_code"
) -> CityPack:
    """The named pack, with the user's boundary file in place of the schematic shapes if given.

    Cached per (name, file, property); PackError (a one-line CommandError) if anything is wrong.
    """
    key = None if boundary_file is None else str(Path(boundary_file).expanduser().resolve())
    return _load(name, key, code_property)
