"""Schematic shapes for the whole country: provinces that tile the land, communes that tile them.

No commune polygons may be redistributed, so they are drawn. The land is the union of every
province's own outline (one disk per commune, sized by its area). It is cut between provinces
by the radical (power) diagram of those disks, each cell going to its commune's province, so
provinces neither overlap nor leave gaps between them and get land in proportion to area; then
each province's share is cut into its communes' power cells, weighted towards their real areas
(ioc.core.citypack.schematic).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point

from ioc.core.citypack.model import Ward
from ioc.core.citypack.schematic import (
    DISK_SCALE,
    GRID,
    Frame,
    half_planes,
    outline,
    parts,
    schematic_shapes,
)

NEIGHBOURS = 24
# The disk kept around a centre that fell in a neighbour's share, at most (km).
KEEP_KM = 1.0


def _radical_cells(sites: np.ndarray, weights: np.ndarray) -> list[Any]:
    """Each site's power cell among its NEIGHBOURS nearest sites (km frame).

    Cut by fewer sites than all, a cell can only be larger than its true one: the cells cover
    the plane, overlapping a little where neighbour lists differ (settled by province order).
    """
    dist2 = ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    k = min(NEIGHBOURS, len(sites) - 1)
    cells = []
    for i in range(len(sites)):
        near = np.argpartition(dist2[i], k)[: k + 1]
        group = np.concatenate(([i], near[near != i]))
        planes = half_planes(sites[group], weights[group], 0)
        cells.append(shapely.intersection_all(planes))
    return cells


def _areal(geom: Any) -> MultiPolygon:
    return MultiPolygon(parts(geom))


def _give_leftovers(regions: dict[str, Any], own: dict[str, Any], left: Any) -> None:
    """Land no cell claimed (between outlines whose owners' cells stop short) goes to the
    province whose own outline holds it, the one sharing most border with it first."""
    for piece in parts(left):
        probe = piece.point_on_surface()
        holders = [c for c in sorted(own) if own[c].covers(probe)] or sorted(own)
        best = max(holders, key=lambda c: piece.boundary.intersection(regions[c]).length)
        regions[best] = _areal(shapely.union(regions[best], piece, grid_size=GRID))


def _keep_centres(
    regions: dict[str, Any],
    by_province: Mapping[str, Sequence[Ward]],
    frame: Frame,
    sites: np.ndarray,
) -> None:
    """A commune whose centre fell in a neighbour's share (a small unit beside a large one)
    gets a small disk around it moved into its own province."""
    dist2 = ((sites[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(dist2, np.inf)
    wards = [(c, w) for c in sorted(by_province) for w in by_province[c]]
    for i, (code, ward) in enumerate(wards):
        centre = Point(ward.lon, ward.lat)
        if regions[code].covers(centre):
            continue
        radius = min(KEEP_KM, 0.3 * math.sqrt(float(dist2[i].min())))
        disk = frame.to_deg(Point(frame.to_km(ward.lon, ward.lat)).buffer(radius, quad_segs=8))
        for other in regions:
            if other != code and regions[other].intersects(disk):
                regions[other] = _areal(shapely.difference(regions[other], disk, grid_size=GRID))
        regions[code] = _areal(shapely.union(regions[code], disk, grid_size=GRID))


def province_regions(by_province: Mapping[str, Sequence[Ward]]) -> dict[str, Any]:
    """Each province's share of the drawn land (degrees), by province code.

    The land is cut by the radical (power) diagram of the communes' own disks, so a province
    gets land in proportion to its communes' areas, however densely their centres lie.
    """
    codes = sorted(by_province)
    wards = [w for c in codes for w in by_province[c]]
    frame = Frame(wards)
    own = {c: outline(by_province[c]) for c in codes}
    land = _areal(shapely.unary_union(list(own.values()), grid_size=GRID))
    sites = np.array([frame.to_km(w.lon, w.lat) for w in wards])
    weights = np.array([DISK_SCALE**2 * w.area_km2 / math.pi for w in wards])
    owners = [c for c in codes for _ in by_province[c]]
    pieces: dict[str, list[Any]] = defaultdict(list)
    for owner, cell in zip(owners, _radical_cells(sites, weights), strict=True):
        pieces[owner].append(frame.to_deg(cell))
    regions: dict[str, Any] = {}
    taken: Any = MultiPolygon()
    # Every overlay on the one grid, so that neighbouring provinces share exact vertices; a
    # province only takes land inside its own outline (a cell cut by few sites can reach far).
    for code in codes:
        mine = _areal(shapely.unary_union(pieces[code], grid_size=GRID))
        mine = _areal(shapely.intersection(mine, own[code], grid_size=GRID))
        mine = _areal(shapely.difference(mine, taken, grid_size=GRID))
        taken = _areal(shapely.union(taken, mine, grid_size=GRID))
        regions[code] = mine
    _give_leftovers(regions, own, _areal(shapely.difference(land, taken, grid_size=GRID)))
    _keep_centres(regions, by_province, frame, sites)
    return regions


def national_shapes(
    by_province: Mapping[str, Sequence[Ward]], only: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Commune shapes per province code (all provinces, or `only` these), deterministic."""
    regions = province_regions(by_province)
    return {
        code: schematic_shapes(by_province[code], land_deg=regions[code])
        for code in sorted(only if only is not None else by_province)
    }
