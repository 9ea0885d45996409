"""Component ids of the wall view (its tiles' and alert buttons' ids are the components')."""

from __future__ import annotations

from typing import Final

MAP: Final = "wall-map"
GEOJSON: Final = "wall-geojson"
LEGEND: Final = "wall-legend"
HEALTH: Final = "wall-health"
ALERTS: Final = "wall-alerts"
BANNER: Final = "wall-banner"
REFRESH: Final = "wall-refresh"
ROTATE: Final = "wall-rotate"
SELECTED: Final = "wall-selected"
PAUSE: Final = "wall-pause"
ACKED: Final = "wall-acked"
