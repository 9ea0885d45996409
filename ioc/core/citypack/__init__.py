"""City packs (map step): wards, schematic or user shapes, 2025 successors and point-in-ward."""

from ioc.core.citypack.lookup import WardLocator
from ioc.core.citypack.model import PackError, Unit2025, Ward
from ioc.core.citypack.pack import CityPack, available_packs, load_pack

__all__ = [
    "CityPack",
    "PackError",
    "Unit2025",
    "Ward",
    "WardLocator",
    "available_packs",
    "load_pack",
]
