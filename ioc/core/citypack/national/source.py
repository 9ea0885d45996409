"""Reading vietnamadminunits' data files as they ship (SQLite and JSON), without importing it.

The package's own import loads its parsers, shapely and geopy (0.5 s, 69 MB); its two files are
all the national pack needs: `dataset.db` (units after and before the reform) and
`converter_2025.json` (the official old-to-new mapping, keyed by folded names, not codes).
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ioc.core.citypack.model import PackError

PACKAGE = "vietnamadminunits"
KIND_OF_TYPE = {"Phường": "phuong", "Xã": "xa", "Đặc khu": "dac_khu", "Thị trấn": "thi_tran"}


@dataclass(frozen=True)
class NewUnit:
    """A commune-level unit from 1 July 2025, as the package gives it."""

    code: str
    name: str
    kind: str
    province_code: str
    lat: float
    lon: float
    area_km2: float | None


@dataclass(frozen=True)
class OldUnit:
    """A pre-reform unit (or a commune-less island district, code = district code)."""

    code: str
    name: str
    kind: str
    district: str
    province_code: str
    lat: float
    lon: float
    # The geocoder's box around the unit: (south, west, north, east); None for island districts.
    bounds: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Link:
    """Old unit -> new unit; `divided` where the old one was split, `default` its main part."""

    old_code: str
    new_code: str
    divided: bool
    default: bool


@dataclass(frozen=True)
class Province:
    """A province (or centrally run city) from 1 July 2025."""

    code: str
    name: str
    short_name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Source:
    """Everything the national pack is derived from, sorted by code."""

    version: str
    provinces: tuple[Province, ...]
    new: tuple[NewUnit, ...]
    old: tuple[OldUnit, ...]
    links: tuple[Link, ...]


def package_dir() -> Path:
    """Where the installed package's data files are; PackError naming the fix if it is absent."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PackError(f"{PACKAGE} is not installed; it comes with the dev extra (make setup)")
    return Path(next(iter(spec.submodule_search_locations)))


def package_version() -> str:
    """The installed version, from its metadata (the data carry no version of their own)."""
    from importlib.metadata import version

    return version(PACKAGE)


def _bounds(text: str | None) -> tuple[float, float, float, float] | None:
    if not text:
        return None
    # "lat1,lon1 – lat2,lon2" with an en dash between the corners.
    a, b = (part.strip() for part in text.split("–"))
    (lat1, lon1), (lat2, lon2) = (tuple(float(x) for x in p.split(",")) for p in (a, b))
    return min(lat1, lat2), min(lon1, lon2), max(lat1, lat2), max(lon1, lon2)


def _rows(db: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    db.row_factory = sqlite3.Row
    cur = db.execute(f"SELECT * FROM {table}")  # noqa: S608 - one of two fixed table names
    return [dict(r) for r in cur]


def _new_units(rows: list[dict[str, Any]]) -> tuple[NewUnit, ...]:
    return tuple(
        sorted(
            (
                NewUnit(
                    code=r["wardCode"],
                    name=r["ward"],
                    kind=KIND_OF_TYPE[r["wardType"]],
                    province_code=r["provinceCode"],
                    lat=float(r["wardLat"]),
                    lon=float(r["wardLon"]),
                    area_km2=None if r["wardAreaKm2"] is None else float(r["wardAreaKm2"]),
                )
                for r in rows
            ),
            key=lambda u: u.code,
        )
    )


def _old_unit(r: dict[str, Any]) -> OldUnit:
    if r["ward"] is None:  # an island district that had no communes
        return OldUnit(
            code=r["districtCode"],
            name=r["district"],
            kind="huyen_dao",
            district=r["district"],
            province_code=r["provinceCode"],
            lat=float(r["districtLat"]),
            lon=float(r["districtLon"]),
            bounds=None,
        )
    return OldUnit(
        code=r["wardCode"],
        name=r["ward"],
        kind=KIND_OF_TYPE[r["wardType"]],
        district=r["district"],
        province_code=r["provinceCode"],
        lat=float(r["wardLat"]),
        lon=float(r["wardLon"]),
        bounds=_bounds(r["wardBounds"]),
    )


def _links(
    converter: dict[str, Any], new_rows: list[dict[str, Any]], old_rows: list[dict[str, Any]]
) -> tuple[Link, ...]:
    new_code = {(r["provinceKey"], r["wardKey"]): r["wardCode"] for r in new_rows}
    old_code = {
        f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}": _old_unit(r).code
        for r in old_rows
    }
    links: set[Link] = set()
    for pkey, wards in converter["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for wkey, olds in wards.items():
            for old in olds:
                links.add(Link(old_code[old], new_code[(pkey, wkey)], False, True))
    for pkey, divided in converter["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, parts in divided.items():
            for part in parts:
                new = new_code[(pkey, part["newWardKey"])]
                links.add(Link(old_code[old], new, True, bool(part["isDefaultNewWard"])))
    return tuple(sorted(links, key=lambda k: (k.old_code, k.new_code)))


def _provinces(rows: list[dict[str, Any]]) -> tuple[Province, ...]:
    seen = {
        r["provinceCode"]: Province(
            r["provinceCode"],
            r["province"],
            r["provinceShort"],
            float(r["provinceLat"]),
            float(r["provinceLon"]),
        )
        for r in rows
    }
    return tuple(seen[c] for c in sorted(seen))


def read_source(data_dir: Path, version: str) -> Source:
    """The package's units and mapping from its data directory; PackError if unreadable."""
    try:
        uri = f"file:{data_dir / 'dataset.db'}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            new_rows, old_rows = _rows(db, "admin_units"), _rows(db, "admin_units_legacy")
        converter = json.loads((data_dir / "converter_2025.json").read_text(encoding="utf-8"))
    except (OSError, sqlite3.Error, ValueError) as exc:
        raise PackError(f"cannot read {PACKAGE} data in {data_dir}: {exc}") from None
    return Source(
        version=version,
        provinces=_provinces(new_rows),
        new=_new_units(new_rows),
        old=tuple(sorted((_old_unit(r) for r in old_rows), key=lambda u: u.code)),
        links=_links(converter, new_rows, old_rows),
    )
