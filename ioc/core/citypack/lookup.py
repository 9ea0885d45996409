"""Point-in-ward (consumer step): which ward a located event falls in, through a spatial index.

An STRtree over the ward shapes sorts a regular lat/lon grid into cells wholly inside one ward
(answered by one array read) and cells on a boundary (answered by testing their few candidate
wards, in code order). A point covered by several shapes (on a shared edge, or in an overlap of
a user's boundary file) goes to the lowest ward code; a point covered by none gives None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely import STRtree

MAX_CELLS_PER_AXIS = 256
OUTSIDE = -1  # grid cell touching no ward
MIXED = -2  # grid cell on a boundary: test its candidates
EDGE_SLACK = 1e-9  # degrees


class WardLocator:
    """ward_at / wards_at over fixed shapes; build once per pack (tens of milliseconds)."""

    def __init__(self, codes: Sequence[str], shapes: Sequence[Any]) -> None:
        if len(codes) != len(shapes) or not codes:
            raise ValueError("codes and shapes must be non-empty and of equal length")
        order = sorted(range(len(codes)), key=lambda i: codes[i])
        self._codes: tuple[str, ...] = tuple(codes[i] for i in order)
        self._shapes: tuple[Any, ...] = tuple(shapes[i] for i in order)
        shapely.prepare(list(self._shapes))
        self.tree = STRtree(list(self._shapes))
        minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(list(self._shapes)))
        span = max(maxx - minx, maxy - miny)
        step = span / MAX_CELLS_PER_AXIS
        self._minx, self._miny, self._maxx, self._maxy = minx, miny, maxx, maxy
        self._nx = max(1, min(MAX_CELLS_PER_AXIS, int(np.ceil((maxx - minx) / step))))
        self._ny = max(1, min(MAX_CELLS_PER_AXIS, int(np.ceil((maxy - miny) / step))))
        self._sx = self._nx / (maxx - minx) if maxx > minx else 0.0
        self._sy = self._ny / (maxy - miny) if maxy > miny else 0.0
        self._build_grid()

    def _build_grid(self) -> None:
        nx, ny = self._nx, self._ny
        xs = np.linspace(self._minx, self._maxx, nx + 1)
        ys = np.linspace(self._miny, self._maxy, ny + 1)
        x0, y0 = np.meshgrid(xs[:-1], ys[:-1])
        x1, y1 = np.meshgrid(xs[1:], ys[1:])
        # Slightly larger boxes, so that a point whose cell index rounds across an edge still
        # lies in the box its cell was classified by.
        e = EDGE_SLACK
        boxes = shapely.box(x0.ravel() - e, y0.ravel() - e, x1.ravel() + e, y1.ravel() + e)
        box_idx, shape_idx = self.tree.query(boxes, predicate="intersects")
        candidates: list[list[int]] = [[] for _ in range(nx * ny)]
        for b, s in zip(box_idx.tolist(), shape_idx.tolist(), strict=True):
            candidates[b].append(s)
        cells = np.full(nx * ny, OUTSIDE, dtype=np.int32)
        single = [b for b, c in enumerate(candidates) if len(c) == 1]
        if single:
            owner = np.array([candidates[b][0] for b in single])
            shapes = np.array(self._shapes, dtype=object)[owner]
            inside = shapely.within(boxes[single], shapes)
            cells[np.array(single)] = np.where(inside, owner, MIXED)
        for b, c in enumerate(candidates):
            if len(c) > 1:
                cells[b] = MIXED
        self._cells = cells
        self._candidates: tuple[tuple[int, ...], ...] = tuple(tuple(sorted(c)) for c in candidates)
        self._cell_list: list[int] = cells.tolist()

    @property
    def codes(self) -> tuple[str, ...]:
        """Ward codes in the order used for tie-breaks (sorted)."""
        return self._codes

    def _cell(self, lon: float, lat: float) -> int:
        ix = min(int((lon - self._minx) * self._sx), self._nx - 1)
        iy = min(int((lat - self._miny) * self._sy), self._ny - 1)
        return iy * self._nx + ix

    def ward_at(self, lat: float, lon: float) -> str | None:
        """The ward code covering (lat, lon), or None when the point is outside every ward."""
        if not (self._minx <= lon <= self._maxx and self._miny <= lat <= self._maxy):
            return None  # also rejects NaN
        cell = self._cell(lon, lat)
        owner = self._cell_list[cell]
        if owner >= 0:
            return self._codes[owner]
        if owner == OUTSIDE:
            return None
        for i in self._candidates[cell]:
            if shapely.intersects_xy(self._shapes[i], lon, lat):
                return self._codes[i]
        return None

    def wards_at(self, lats: Sequence[float], lons: Sequence[float]) -> list[str | None]:
        """ward_at for many points at once (same answers, vectorized cell lookup)."""
        lat = np.asarray(lats, dtype=float)
        lon = np.asarray(lons, dtype=float)
        if lat.shape != lon.shape or lat.ndim != 1:
            raise ValueError("lats and lons must be 1-D sequences of equal length")
        ok = (lon >= self._minx) & (lon <= self._maxx) & (lat >= self._miny) & (lat <= self._maxy)
        ix = np.zeros(lat.shape, dtype=np.int64)
        iy = np.zeros(lat.shape, dtype=np.int64)
        ix[ok] = np.minimum(((lon[ok] - self._minx) * self._sx).astype(np.int64), self._nx - 1)
        iy[ok] = np.minimum(((lat[ok] - self._miny) * self._sy).astype(np.int64), self._ny - 1)
        cell = iy * self._nx + ix
        owner = np.where(ok, self._cells[cell], OUTSIDE)
        out: list[str | None] = [self._codes[o] if o >= 0 else None for o in owner.tolist()]
        for k in np.flatnonzero(owner == MIXED).tolist():
            out[k] = self.ward_at(float(lat[k]), float(lon[k]))
        return out
