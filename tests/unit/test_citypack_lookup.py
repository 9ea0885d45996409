"""Point-in-ward: right on the centroids, equal to a brute-force scan everywhere, None outside;
user boundary files replace the schematic shapes or are refused with one line."""

from __future__ import annotations

import json
import math
import random
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box, mapping

from ioc.core.citypack import CityPack, PackError, WardLocator, load_pack


def halong() -> CityPack:
    return load_pack("halong")


def brute_force(codes: list[str], shapes: list[Any], lats: np.ndarray, lons: np.ndarray) -> list:
    """First ward in code order whose shape covers the point, by testing every shape."""
    answer: list[str | None] = [None] * len(lats)
    for code, geom in sorted(zip(codes, shapes, strict=True), reverse=True):
        hit = shapely.intersects_xy(geom, lons, lats)
        for k in np.flatnonzero(hit):
            answer[k] = code  # lower codes come later and win
    return answer


def pack_arrays(p: CityPack) -> tuple[list[str], list[Any]]:
    codes = [w.code for w in p.wards]
    return codes, [p.shape(c) for c in codes]


def test_centroids_are_in_their_own_ward() -> None:
    p = halong()
    for w in p.wards:
        assert p.ward_at(w.lat, w.lon) == w.code
    assert p.wards_at([w.lat for w in p.wards], [w.lon for w in p.wards]) == [
        w.code for w in p.wards
    ]


def test_grid_matches_brute_force_everywhere() -> None:
    p = halong()
    minx, miny, maxx, maxy = p.bounds
    # A grid finer than the index's cells, reaching past the city on every side.
    lons, lats = np.meshgrid(
        np.linspace(minx - 0.02, maxx + 0.02, 401), np.linspace(miny - 0.02, maxy + 0.02, 337)
    )
    lats, lons = lats.ravel(), lons.ravel()
    expected = brute_force(*pack_arrays(p), lats, lons)
    assert sum(e is not None for e in expected) > 50_000
    assert sum(e is None for e in expected) > 20_000
    assert len({e for e in expected if e is not None}) == 33
    got = [p.ward_at(float(a), float(b)) for a, b in zip(lats, lons, strict=True)]
    assert got == expected
    assert p.wards_at(lats.tolist(), lons.tolist()) == expected


def test_boundary_vertices_and_random_points_match_brute_force() -> None:
    p = halong()
    codes, shapes = pack_arrays(p)
    # Every vertex lies on two or three wards' boundaries: the lowest code must win.
    xy = np.concatenate([np.asarray(s.exterior.coords) for s in shapes])
    rng = random.Random(7)
    minx, miny, maxx, maxy = p.bounds
    extra = np.array([(rng.uniform(minx, maxx), rng.uniform(miny, maxy)) for _ in range(20_000)])
    xy = np.concatenate([xy, extra])
    expected = brute_force(codes, shapes, xy[:, 1], xy[:, 0])
    assert [p.ward_at(float(y), float(x)) for x, y in xy] == expected
    assert p.wards_at(xy[:, 1].tolist(), xy[:, 0].tolist()) == expected


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (0.0, 0.0),
        (20.90, 107.10),  # Hạ Long Bay, south of the coast
        (20.999, 107.062),  # Cửa Lục bay
        (21.5, 107.0),
        (math.nan, 107.0),
        (21.0, math.inf),
    ],
)
def test_points_outside_every_ward_give_none(lat: float, lon: float) -> None:
    assert halong().ward_at(lat, lon) is None
    assert halong().wards_at([lat], [lon]) == [None]


def test_overlapping_shapes_go_to_the_lowest_code() -> None:
    codes = ["00030", "00010", "00020"]
    shapes = [box(0, 0, 2, 2), box(1, 1, 3, 3), box(5, 5, 6, 6)]
    loc = WardLocator(codes, shapes)
    assert loc.ward_at(1.5, 1.5) == "00010"  # in both squares
    assert loc.ward_at(0.5, 0.5) == "00030"
    assert loc.ward_at(5.5, 5.5) == "00020"
    assert loc.ward_at(4.0, 4.0) is None
    lons, lats = np.meshgrid(np.linspace(-0.5, 6.5, 141), np.linspace(-0.5, 6.5, 141))
    lats, lons = lats.ravel(), lons.ravel()
    expected = brute_force(codes, shapes, lats, lons)
    assert [loc.ward_at(float(a), float(b)) for a, b in zip(lats, lons, strict=True)] == expected


def test_locator_speed_floor() -> None:
    p = halong()
    minx, miny, maxx, maxy = p.bounds
    rng = random.Random(3)
    pts = [(rng.uniform(miny, maxy), rng.uniform(minx, maxx)) for _ in range(50_000)]
    p.ward_at(*pts[0])
    start = time.perf_counter()
    for lat, lon in pts:
        p.ward_at(lat, lon)
    rate = len(pts) / (time.perf_counter() - start)
    assert rate > 100_000, f"{rate:.0f} lookups/s"


def write_boundaries(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def user_features(prop: str = "ma_xa") -> list[dict[str, Any]]:
    """The pack's wards shrunk a little (so they differ from the schematic), codes as integers."""
    p = halong()
    feats = []
    for w in p.wards:
        geom = p.shape(w.code).buffer(-0.0005)
        if w.code == "06700":  # an island ward drawn as two pieces
            geom = MultiPolygon([geom, box(106.97, 20.915, 106.975, 20.918)])
        feats.append(
            {"type": "Feature", "properties": {prop: int(w.code)}, "geometry": mapping(geom)}
        )
    return feats


def test_user_boundary_file_replaces_the_schematic_shapes(tmp_path: Path) -> None:
    path = write_boundaries(tmp_path / "real.geojson", user_features())
    p = load_pack("halong", path, code_property="ma_xa")
    assert p.shapes_source == str(path.resolve())
    assert p is not halong()
    assert p.shape("06700").geom_type == "MultiPolygon"
    assert p.shape("06649").area < halong().shape("06649").area
    assert p.ward_at(20.9165, 106.9725) == "06700"  # the added islet
    assert halong().ward_at(20.9165, 106.9725) is None
    w = p.ward("06649")
    assert p.ward_at(w.lat, w.lon) == "06649"
    assert p.geojson()["features"][0]["properties"]["ward_code"] == "06649"
    codes, shapes = pack_arrays(p)
    minx, miny, maxx, maxy = p.bounds
    lons, lats = np.meshgrid(np.linspace(minx, maxx, 211), np.linspace(miny, maxy, 173))
    lats, lons = lats.ravel(), lons.ravel()
    assert p.wards_at(lats.tolist(), lons.tolist()) == brute_force(codes, shapes, lats, lons)


def test_unknown_and_missing_codes_are_listed_in_one_line(tmp_path: Path) -> None:
    feats = user_features("ward_code")
    feats = [f for f in feats if f["properties"]["ward_code"] not in (6649, 7066)]
    feats[0]["properties"]["ward_code"] = "12345"
    feats[1]["properties"]["ward_code"] = "99999"
    path = write_boundaries(tmp_path / "bad.geojson", feats)
    with pytest.raises(PackError) as err:
        load_pack("halong", path)
    message = str(err.value)
    assert "\n" not in message
    assert "unknown ward code(s) 12345, 99999" in message
    # The two renamed features were 06652 and 06655.
    assert "missing ward code(s) 06649, 06652, 06655, 07066" in message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        ('{"type": "FeatureCollection", "features": [{"properties": {}}]}', "feature index 0"),
        (
            '{"type": "FeatureCollection", "features": [{"properties": {"ward_code": "06649"},'
            ' "geometry": {"type": "Point", "coordinates": [107.1, 21.0]}}]}',
            "geometry for ward code(s) 06649",
        ),
    ],
)
def test_unusable_boundary_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.geojson"
    path.write_text(content)
    with pytest.raises(PackError, match=re.escape(message)):
        load_pack("halong", path)


def test_swapped_coordinates_are_refused(tmp_path: Path) -> None:
    feats = user_features("ward_code")
    for f in feats:
        geom = shapely.geometry.shape(f["geometry"])
        f["geometry"] = mapping(shapely.transform(geom, lambda xy: xy[:, ::-1]))
    path = write_boundaries(tmp_path / "swapped.geojson", feats)
    with pytest.raises(PackError, match="WGS84"):
        load_pack("halong", path)


def test_missing_boundary_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="cannot read boundary file"):
        load_pack("halong", tmp_path / "nope.geojson")


def test_invalid_user_polygon_is_repaired(tmp_path: Path) -> None:
    feats = user_features("ward_code")
    bow_tie = Polygon([(107.0, 21.0), (107.01, 21.01), (107.01, 21.0), (107.0, 21.01)])
    assert not bow_tie.is_valid
    feats[0]["geometry"] = mapping(bow_tie)
    p = load_pack("halong", write_boundaries(tmp_path / "tie.geojson", feats))
    assert p.shape("06649").is_valid
    assert p.shape("06649").area > 0
