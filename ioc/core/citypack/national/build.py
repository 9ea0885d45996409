"""Writing the national pack's files from the package's data: deterministic, byte for byte."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from ioc.core.citypack.national.checks import corrected
from ioc.core.citypack.national.population import (
    commune_estimates,
    province_estimates,
    read_province_figures,
)
from ioc.core.citypack.national.source import Source

FIGURES_FILE = "provinces_2025.csv"
COMMUNE_COLUMNS = (
    "code",
    "name",
    "kind",
    "province_code",
    "lat",
    "lon",
    "area_km2",
    "population_estimate",
)
PROVINCE_COLUMNS = (
    "code",
    "name",
    "short_name",
    "lat",
    "lon",
    "area_km2",
    "population_published",
    "population_estimate",
    "population_source",
)
CORRECTION_COLUMNS = (
    "code",
    "name",
    "province_code",
    "field",
    "package",
    "used",
    "distance_km",
    "reason",
)
LINEAGE_COLUMNS = (
    "old_code",
    "old_name",
    "old_kind",
    "old_district",
    "old_province_code",
    "old_lat",
    "old_lon",
    "new_code",
    "divided",
    "default",
)


def _csv(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def national_files(source: Source, pack_dir: Path) -> dict[str, bytes]:
    """The generated files of the national pack (name -> bytes), from `source` and the pack's
    own facts file (provinces_2025.csv)."""
    figures = read_province_figures(pack_dir / FIGURES_FILE)
    units, notes = corrected(source, {f.code: (f.name, f.area_km2) for f in figures})
    province_people = province_estimates(figures)
    people = commune_estimates(units, province_people)
    by_code = {f.code: f for f in figures}
    return {
        "communes.csv": _csv(
            COMMUNE_COLUMNS,
            (
                (u.code, u.name, u.kind, u.province_code, u.lat, u.lon, u.area_km2, people[u.code])
                for u in units
            ),
        ),
        "provinces.csv": _csv(
            PROVINCE_COLUMNS,
            (
                (
                    p.code,
                    p.name,
                    p.short_name,
                    p.lat,
                    p.lon,
                    by_code[p.code].area_km2,
                    by_code[p.code].population,
                    province_people[p.code],
                    by_code[p.code].source,
                )
                for p in source.provinces
            ),
        ),
        "corrections.csv": _csv(
            CORRECTION_COLUMNS,
            (
                (
                    c.code,
                    c.name,
                    c.province_code,
                    c.field,
                    c.package,
                    c.used,
                    "" if c.distance_km is None else c.distance_km,
                    c.reason,
                )
                for c in notes
            ),
        ),
        "lineage.csv": _lineage(source),
    }


def _lineage(source: Source) -> bytes:
    old = {u.code: u for u in source.old}
    return _csv(
        LINEAGE_COLUMNS,
        (
            (
                k.old_code,
                old[k.old_code].name,
                old[k.old_code].kind,
                old[k.old_code].district,
                old[k.old_code].province_code,
                old[k.old_code].lat,
                old[k.old_code].lon,
                k.new_code,
                int(k.divided),
                int(k.default),
            )
            for k in source.links
        ),
    )
