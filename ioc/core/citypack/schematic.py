"""Schematic ward shapes (map step): area-weighted power cells of the centroids in a drawn outline.

Public ward polygons may not be redistributed, so the pack draws its own: an outline made of one
disk per ward sized from its area (minus the pack's water disks), cut into cells around the
centroids whose weights are tuned so each cell's area approaches the ward's area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

from ioc.core.citypack.model import PackError, Ward, WaterDisk

GRID = 1e-5  # degrees (about 1 m): the precision every stored coordinate is snapped to
KM_PER_DEG_LAT = 110.574
KM_PER_DEG_LON_EQUATOR = 111.320

# Outline: disks of DISK_SCALE x the ward's own area (neighbouring disks overlap), merged,
# gaps narrower than 2 * CLOSING_KM filled, water cut out, smoothed to SIMPLIFY_KM.
DISK_SCALE = 1.15
CLOSING_KM = 1.6
SIMPLIFY_KM = 0.04
# Cell weights: a few damped steps towards the target areas. |w_i - w_j| stays below
# SITE_MARGIN * d_ij^2 so every centroid keeps at least (1 - SITE_MARGIN) / 2 of the distance to
# each neighbour inside its own cell.
WEIGHT_STEPS = 60
SITE_MARGIN = 0.5
HALF_PLANE_KM = 1000.0


class Frame:
    """A local equirectangular frame in km around the wards, good to metres at city scale."""

    def __init__(self, wards: Sequence[Ward]) -> None:
        self.lat0 = sum(w.lat for w in wards) / len(wards)
        self.lon0 = sum(w.lon for w in wards) / len(wards)
        self.kx = KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(self.lat0))

    def to_km(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * KM_PER_DEG_LAT

    def geom_to_km(self, geom: Any) -> Any:
        def there(xy: Any) -> Any:
            out = np.empty_like(xy)
            out[:, 0] = (xy[:, 0] - self.lon0) * self.kx
            out[:, 1] = (xy[:, 1] - self.lat0) * KM_PER_DEG_LAT
            return out

        return shapely.transform(geom, there)

    def to_deg(self, geom: Any) -> Any:
        def back(xy: Any) -> Any:
            out = np.empty_like(xy)
            out[:, 0] = xy[:, 0] / self.kx + self.lon0
            out[:, 1] = xy[:, 1] / KM_PER_DEG_LAT + self.lat0
            return out

        return shapely.transform(geom, back)


def parts(geom: Any) -> list[Polygon]:
    """The non-empty Polygons of any geometry."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    return [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon) and not g.is_empty]


def _water(frame: Frame, water: Sequence[WaterDisk]) -> list[Any]:
    """Each disk, joined to the previous one of the same name by their convex hull (a channel)."""
    shapes: list[Any] = []
    previous: tuple[str, Any] | None = None
    for d in water:
        disk = Point(frame.to_km(d.lon, d.lat)).buffer(d.radius_km, quad_segs=16)
        if previous is not None and previous[0] == d.name:
            shapes.append(shapely.union(previous[1], disk).convex_hull)
        else:
            shapes.append(disk)
        previous = (d.name, disk)
    return shapes


def _outline(frame: Frame, wards: Sequence[Ward], water: Sequence[WaterDisk]) -> Any:
    disks = [
        Point(frame.to_km(w.lon, w.lat)).buffer(
            DISK_SCALE * math.sqrt(w.area_km2 / math.pi), quad_segs=16
        )
        for w in wards
    ]
    land = shapely.unary_union(disks).buffer(CLOSING_KM, quad_segs=16).buffer(-CLOSING_KM)
    # Enclosed gaps are inland, not lakes worth drawing.
    land = shapely.unary_union([Polygon(p.exterior) for p in parts(land)])
    wet = _water(frame, water)
    if wet:
        land = land.difference(shapely.unary_union(wet))
    return land.simplify(SIMPLIFY_KM)


def half_planes(sites: np.ndarray, weights: np.ndarray, i: int) -> Any:
    """For each j != i, the points x with |x-a|^2 - w_i <= |x-b|^2 - w_j as a large quadrilateral
    (a = sites[i], b = sites[j]): the side of the power bisector where site i wins."""
    others = np.arange(len(sites)) != i
    a, b = sites[i], sites[others]
    n = b - a
    norm = np.hypot(n[:, 0], n[:, 1])[:, None]
    unit = n / norm
    c = ((b * b).sum(axis=1) - float(a @ a) + weights[i] - weights[others]) / 2.0
    x0 = unit * (c[:, None] / norm)
    t = np.stack([-unit[:, 1], unit[:, 0]], axis=1) * HALF_PLANE_KM
    back = unit * HALF_PLANE_KM
    ring = np.stack([x0 - t, x0 + t, x0 + t - back, x0 - t - back, x0 - t], axis=1)
    return shapely.polygons(ring)


def _power_cells(sites: np.ndarray, weights: np.ndarray, land: Any) -> list[Any]:
    frame = land.envelope.buffer(10.0)
    return [
        shapely.intersection_all([frame, *half_planes(sites, weights, i)]).intersection(land)
        for i in range(len(sites))
    ]


def _own_area(cell: Any, site: Point) -> float:
    return float(sum(p.area for p in parts(cell) if p.covers(site)))


def _limit(weights: np.ndarray, dist2: np.ndarray) -> np.ndarray:
    """Bring the weights within |w_i - w_j| <= SITE_MARGIN * d_ij^2 for every pair.

    Pulling the worst pair together at a time keeps the other weights free; a final uniform
    shrink guarantees the bound if those pulls have not settled.
    """
    w: np.ndarray = weights - weights.mean()
    allowed = SITE_MARGIN * dist2
    for _ in range(200):
        gap = w[:, None] - w[None, :] - allowed
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        if gap[i, j] <= 0:
            break
        w[i] -= gap[i, j] / 2.0
        w[j] += gap[i, j] / 2.0
    spread = np.abs(w[:, None] - w[None, :])
    np.fill_diagonal(spread, 0.0)
    worst = float((spread / np.where(spread > 0, allowed, 1.0)).max())
    if worst > 1.0:
        w = w / (worst * (1 + 1e-9))
    return w


def _weights(sites: np.ndarray, wards: Sequence[Ward], land: Any) -> np.ndarray:
    targets = np.array([w.area_km2 for w in wards])
    targets *= land.area / targets.sum()
    dist2 = ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    points = [Point(s) for s in sites]
    weights = np.zeros(len(sites))
    for _ in range(WEIGHT_STEPS):
        cells = _power_cells(sites, weights, land)
        areas = np.array([_own_area(c, p) for c, p in zip(cells, points, strict=True)])
        # Growing w_i by d moves a round cell's edge out by about pi * d / 2 of area; half that.
        weights = _limit(weights + (targets - areas) / math.pi, dist2)
    return np.asarray(weights, dtype=float)


def _gridded_faces(pieces: Sequence[Any]) -> list[Polygon]:
    """Node every piece's boundary on the GRID and re-form the faces.

    Snapping each polygon on its own could move a shared edge differently on its two sides;
    noding the whole linework at fixed precision gives faces that share exact vertices.
    """
    rings = [p.boundary for p in pieces if not p.is_empty]
    edges = shapely.unary_union(rings, grid_size=GRID)
    return parts(shapely.polygonize(shapely.get_parts(edges)))


def _attach_orphans(shapes: dict[str, Any], orphans: list[Polygon]) -> None:
    """Give each stray piece to the neighbour it shares most border with, keeping one Polygon."""
    pending = sorted(orphans, key=lambda g: (-g.area, g.bounds))
    progress = True
    while pending and progress:
        progress = False
        rest: list[Polygon] = []
        for piece in pending:
            best: tuple[float, str] | None = None
            for code in sorted(shapes):
                shared = piece.boundary.intersection(shapes[code].boundary).length
                if shared > 0 and (best is None or shared > best[0]):
                    best = (shared, code)
            merged = None
            if best is not None:
                merged = shapely.unary_union([shapes[best[1]], piece], grid_size=GRID)
            if best is not None and isinstance(merged, Polygon):
                shapes[best[1]] = merged
                progress = True
            else:
                rest.append(piece)
        pending = rest
    # Pieces touching no ward (islets cut off by the water) are left out of the map.


def outline(wards: Sequence[Ward], water: Sequence[WaterDisk] = ()) -> Any:
    """The drawn land of these wards (disks sized by area, merged, water cut out), in degrees."""
    frame = Frame(wards)
    return frame.to_deg(_outline(frame, wards, water))


def schematic_shapes(
    wards: Sequence[Ward], water: Sequence[WaterDisk] = (), land_deg: Any = None
) -> dict[str, Polygon]:
    """One Polygon per ward code, containing its centroid, on a 1e-5 degree grid; deterministic.

    The cells fill `land_deg` (degrees) when given (a province's share of the country), else
    the outline drawn from the wards themselves.
    """
    frame = Frame(wards)
    sites = np.array([frame.to_km(w.lon, w.lat) for w in wards])
    land = _outline(frame, wards, water) if land_deg is None else frame.geom_to_km(land_deg)
    for w, s in zip(wards, sites, strict=True):
        if not land.contains(Point(s)):
            raise PackError(f"ward {w.code}: its centroid lies in water or outside the outline")
    cells = _power_cells(sites, _weights(sites, wards, land), land)
    pieces = [frame.to_deg(c) for c in cells]
    shapely.prepare(pieces)
    owned: dict[str, list[Polygon]] = {w.code: [] for w in wards}
    for face in _gridded_faces(pieces):
        probe = face.point_on_surface()
        for w, piece in zip(wards, pieces, strict=True):
            if piece.contains(probe):
                owned[w.code].append(face)
                break
    shapes: dict[str, Any] = {}
    orphans: list[Polygon] = []
    for w in wards:
        centroid = Point(w.lon, w.lat)
        for part in parts(shapely.unary_union(owned[w.code], grid_size=GRID)):
            if part.contains(centroid):
                shapes[w.code] = part
            else:
                orphans.append(part)
        if w.code not in shapes:
            raise PackError(f"schematic shape of ward {w.code} misses its centroid")
    _attach_orphans(shapes, orphans)
    return {code: shapely.orient_polygons(shapes[code]) for code in sorted(shapes)}
