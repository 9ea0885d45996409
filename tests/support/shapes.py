"""Compare two schematic-shape GeoJSON documents by what matters on the map, not by their bytes."""

from __future__ import annotations

import json

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

# GEOS and numpy releases move a Voronoi vertex by a rounding step or two; a ward that changed
# shape for real moves far more than this share of its area.
AREA_TOLERANCE = 0.01


def ward_polygons(geojson: bytes) -> dict[str, BaseGeometry]:
    doc = json.loads(geojson)
    return {f["properties"]["ward_code"]: shape(f["geometry"]) for f in doc["features"]}


def assert_same_shapes(built: bytes, committed: bytes) -> None:
    """Every ward present in both, valid, and each within AREA_TOLERANCE of its committed shape."""
    new, old = ward_polygons(built), ward_polygons(committed)
    assert sorted(new) == sorted(old)
    for code, poly in new.items():
        assert poly.is_valid, code
        moved = poly.symmetric_difference(old[code]).area / old[code].area
        assert moved < AREA_TOLERANCE, (code, moved)
