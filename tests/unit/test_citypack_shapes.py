"""Schematic ward shapes: valid single polygons around their centroids, a clean partition, and a
rebuild that matches the committed shapes.geojson ward by ward."""

from __future__ import annotations

import json
import math
from itertools import combinations

import pytest
import shapely
from shapely.geometry import Point, Polygon, shape

from ioc.app.commands.citypack import build_geojson
from ioc.core.citypack import PackError, Ward, load_pack
from ioc.core.citypack.model import WaterDisk
from ioc.core.citypack.pack import PACKS_DIR
from ioc.core.citypack.schematic import schematic_shapes
from tests.support.shapes import assert_same_shapes

SHAPES = PACKS_DIR / "halong" / "shapes.geojson"


def features() -> list[dict[str, object]]:
    doc = json.loads(SHAPES.read_bytes())
    assert doc["type"] == "FeatureCollection"
    feats: list[dict[str, object]] = doc["features"]
    return feats


def polygons() -> dict[str, Polygon]:
    out = {}
    for f in features():
        props = f["properties"]
        assert isinstance(props, dict)
        out[props["ward_code"]] = shape(f["geometry"])
    return out


def km2(poly: Polygon, lat: float) -> float:
    # Independent of the generator's frame: plain spherical-earth degree lengths.
    return poly.area * (math.pi * 6371.0 / 180.0) ** 2 * math.cos(math.radians(lat))


def test_one_valid_polygon_per_ward_containing_its_centroid() -> None:
    pack = load_pack("halong")
    shapes = polygons()
    assert sorted(shapes) == sorted(pack.codes)
    for f in features():
        geometry = f["geometry"]
        assert isinstance(geometry, dict)
        assert geometry["type"] == "Polygon"
    for w in pack.wards:
        poly = shapes[w.code]
        assert isinstance(poly, Polygon)
        assert poly.is_valid, w.code
        assert poly.contains(Point(w.lon, w.lat)), w.code
        # Not hugging the edge: the centroid sits at least ~100 m inside.
        assert poly.exterior.distance(Point(w.lon, w.lat)) > 0.001, w.code


def test_wards_do_not_overlap_and_leave_no_slivers() -> None:
    shapes = polygons()
    for (a, pa), (b, pb) in combinations(sorted(shapes.items()), 2):
        assert pa.intersection(pb).area == 0.0, (a, b)
    union = shapely.unary_union(list(shapes.values()))
    assert union.area == pytest.approx(sum(p.area for p in shapes.values()), rel=1e-9)
    # The mainland is one piece without holes; Tuần Châu is an island of its own.
    pieces = list(getattr(union, "geoms", [union]))
    assert len(pieces) == 2
    assert all(len(p.interiors) == 0 for p in pieces)
    island = shapes["06700"]
    assert not any(island.intersects(p) for c, p in shapes.items() if c != "06700")


def test_the_strait_separates_bai_chay_from_hong_gai() -> None:
    shapes = polygons()
    west = {"06673", "06661", "06679", "06655"}  # Bãi Cháy side
    east = {"06691", "06682", "06685", "06694", "06658"}  # Hồng Gai side
    for a in west:
        for b in east:
            assert not shapes[a].intersects(shapes[b]), (a, b)


def test_cell_areas_follow_ward_areas() -> None:
    pack = load_pack("halong")
    shapes = polygons()
    total = sum(km2(shapes[w.code], w.lat) for w in pack.wards)
    assert total == pytest.approx(sum(w.area_km2 for w in pack.wards), rel=0.15)
    ratios = {w.code: km2(shapes[w.code], w.lat) / w.area_km2 for w in pack.wards}
    assert all(0.5 < r < 3.5 for r in ratios.values()), ratios
    # Wards squeezed by close neighbours or the coast miss their size; most do not.
    assert sum(1 for r in ratios.values() if 0.8 < r < 1.25) >= 20, ratios


def test_coordinates_are_compact_and_rounded() -> None:
    raw = SHAPES.read_bytes()
    assert len(raw) < 60_000
    assert b": " not in raw
    assert b", " not in raw
    for poly in polygons().values():
        assert poly.exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise
        for x, y in poly.exterior.coords:
            assert x == round(x, 5)
            assert y == round(y, 5)


def test_build_reproduces_the_committed_shapes() -> None:
    # The committed file was written by another process with other library versions: the rebuild
    # must give the same wards, not the same bytes (GEOS rounds differently between releases).
    assert_same_shapes(build_geojson("halong"), SHAPES.read_bytes())


def test_the_shape_comparison_notices_a_moved_ward() -> None:
    doc = json.loads(SHAPES.read_bytes())
    ring = doc["features"][0]["geometry"]["coordinates"][0]
    doc["features"][0]["geometry"]["coordinates"][0] = [[x + 0.003, y] for x, y in ring]
    with pytest.raises(AssertionError):
        assert_same_shapes(json.dumps(doc).encode(), SHAPES.read_bytes())


def _ward(code: str, lat: float, lon: float, area: float) -> Ward:
    return Ward(code, f"Phường {code}", "phuong", 1000, area, lat, lon, ("00001",))


def test_small_synthetic_pack() -> None:
    wards = [
        _ward("00010", 21.0, 107.0, 4.0),
        _ward("00020", 21.0, 107.03, 9.0),
        _ward("00030", 21.03, 107.015, 2.0),
    ]
    shapes = schematic_shapes(wards)
    assert sorted(shapes) == ["00010", "00020", "00030"]
    for w in wards:
        assert shapes[w.code].is_valid
        assert shapes[w.code].contains(Point(w.lon, w.lat))
    assert km2(shapes["00020"], 21.0) > km2(shapes["00010"], 21.0) > km2(shapes["00030"], 21.0)


def test_centroid_in_water_is_refused() -> None:
    wards = [_ward("00010", 21.0, 107.0, 4.0), _ward("00020", 21.0, 107.03, 9.0)]
    with pytest.raises(PackError, match="00010"):
        schematic_shapes(wards, [WaterDisk("lake", 21.0, 107.0, 0.5)])
