"""Ward shapes (map step): GeoJSON writing of the pack's shapes and reading of boundary files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import shapely
from shapely.errors import GEOSException
from shapely.geometry import Polygon, shape

from ioc.core.citypack.model import PackError, Ward
from ioc.core.citypack.schematic import parts


def _rounded(coords: Iterable[Sequence[float]]) -> list[list[float]]:
    return [[round(x, 5), round(y, 5)] for x, y, *_ in coords]


def polygon_coordinates(poly: Polygon) -> list[list[list[float]]]:
    """GeoJSON rings of a Polygon, rounded to 5 decimals."""
    return [_rounded(poly.exterior.coords)] + [_rounded(r.coords) for r in poly.interiors]


def geometry_json(geom: Any) -> dict[str, Any]:
    """A GeoJSON geometry object for a Polygon or MultiPolygon, rounded to 5 decimals."""
    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": polygon_coordinates(geom)}
    return {
        "type": "MultiPolygon",
        "coordinates": [polygon_coordinates(p) for p in parts(geom)],
    }


def feature_collection(wards: Sequence[Ward], shapes: dict[str, Any]) -> dict[str, Any]:
    """The wards as a GeoJSON FeatureCollection (properties: ward_code, name, kind, population)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "ward_code": w.code,
                    "name": w.name,
                    "kind": w.kind,
                    "population": w.population,
                },
                "geometry": geometry_json(shapes[w.code]),
            }
            for w in wards
            if w.code in shapes
        ],
    }


def dump_geojson(collection: dict[str, Any]) -> bytes:
    """Compact, deterministic bytes: one feature per line so diffs stay readable."""
    head = '{"type":"FeatureCollection","features":[\n'
    lines = [
        json.dumps(f, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
        for f in collection["features"]
    ]
    return (head + ",\n".join(lines) + "\n]}\n").encode("utf-8")


def _normal_code(raw: object) -> str | None:
    """A ward code as the pack spells it: 5 digits, zero-padded (files often store 6649)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int) and raw >= 0:
        return f"{raw:05d}"
    if isinstance(raw, str) and raw.strip().isdigit() and len(raw.strip()) <= 5:
        return raw.strip().zfill(5)
    return None


def _polygonal(geom: Any) -> Any:
    """The geometry made valid, keeping only its area (a repaired bow-tie may shed lines)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    polys = parts(geom)
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else shapely.unary_union(polys)


def _features(path: Path) -> list[Any]:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise PackError(f"cannot read boundary file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackError(f"boundary file {path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise PackError(f"boundary file {path} is not a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise PackError(f"boundary file {path} has no 'features' list")
    return features


def read_boundaries(path: Path, code_property: str = "ward_code") -> dict[str, Any]:
    """Ward code -> Polygon/MultiPolygon from a GeoJSON file; PackError (one line) if unusable.

    Several features with the same code are merged (some sources split a ward at islands).
    """
    found: dict[str, list[Any]] = {}
    no_code: list[int] = []
    bad_geometry: list[str] = []
    for index, feature in enumerate(_features(path)):
        props = feature.get("properties") if isinstance(feature, dict) else None
        code = _normal_code(props.get(code_property)) if isinstance(props, dict) else None
        if code is None:
            no_code.append(index)
            continue
        raw = feature.get("geometry")
        geom = None
        if isinstance(raw, dict) and raw.get("type") in ("Polygon", "MultiPolygon"):
            try:
                geom = _polygonal(shape(raw))
            except (ValueError, TypeError, AttributeError, IndexError, GEOSException):
                geom = None
        if geom is None:
            bad_geometry.append(code)
            continue
        found.setdefault(code, []).append(geom)
    if no_code:
        shown = ", ".join(str(i) for i in no_code[:10]) + (", ..." if len(no_code) > 10 else "")
        raise PackError(
            f"boundary file {path}: {len(no_code)} feature(s) without a 5-digit "
            f"'{code_property}' property (feature index {shown})"
        )
    if bad_geometry:
        raise PackError(
            f"boundary file {path}: no usable Polygon/MultiPolygon geometry for ward code(s) "
            + ", ".join(sorted(set(bad_geometry)))
        )
    return {
        code: geoms[0] if len(geoms) == 1 else shapely.unary_union(geoms)
        for code, geoms in sorted(found.items())
    }


def match_pack(path: Path, shapes: dict[str, Any], wards: Sequence[Ward]) -> None:
    """The file must hold exactly the pack's codes, in lon/lat near the pack's centroids."""
    codes = {w.code for w in wards}
    unknown = sorted(set(shapes) - codes)
    missing = sorted(codes - set(shapes))
    if unknown or missing:
        problems = []
        if unknown:
            problems.append("unknown ward code(s) " + ", ".join(unknown))
        if missing:
            problems.append("missing ward code(s) " + ", ".join(missing))
        raise PackError(f"boundary file {path} does not match the pack: " + "; ".join(problems))
    minx, miny, maxx, maxy = shapely.total_bounds(list(shapes.values()))
    inside = sum(1 for w in wards if minx <= w.lon <= maxx and miny <= w.lat <= maxy)
    if inside * 2 < len(wards):
        raise PackError(
            f"boundary file {path}: its extent ({minx:.3f}, {miny:.3f}, {maxx:.3f}, {maxy:.3f}) "
            "misses most ward centroids; coordinates must be WGS84 longitude, latitude"
        )
