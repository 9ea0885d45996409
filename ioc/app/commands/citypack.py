"""`ioc citypack` (map step): redraw schematic shapes, check a boundary file, list wards."""

from __future__ import annotations

import argparse
from pathlib import Path

from ioc.app.cli import CommandError
from ioc.app.settings import Settings
from ioc.core.citypack.model import read_units, read_wards, read_water
from ioc.core.citypack.pack import SHAPES_FILE, load_pack, pack_dir
from ioc.core.citypack.schematic import schematic_shapes
from ioc.core.citypack.shapes import dump_geojson, feature_collection


def build_geojson(name: str) -> bytes:
    """The schematic shapes.geojson of a pack, drawn from its wards.csv and water.csv."""
    directory = pack_dir(name)
    wards = read_wards(directory / "wards.csv")
    shapes = schematic_shapes(wards, read_water(directory / "water.csv"))
    return dump_geojson(feature_collection(wards, shapes))


def _build(args: argparse.Namespace, settings: Settings) -> int:
    name = args.pack or settings.city_pack
    data = build_geojson(name)
    target = Path(args.output) if args.output else pack_dir(name) / SHAPES_FILE
    try:
        target.write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {target}: {exc.strerror or exc}") from None
    count = data.count(b'"type":"Feature"')
    print(f"{name}: wrote schematic shapes of {count} wards ({len(data)} bytes) to {target}")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    name = args.pack or settings.city_pack
    path = Path(args.boundaries)
    pack = load_pack(name, path, args.property)
    multi = sum(1 for w in pack.wards if pack.shape(w.code).geom_type == "MultiPolygon")
    own = sum(1 for w in pack.wards if pack.ward_at(w.lat, w.lon) == w.code)
    print(
        f"{path}: {len(pack)} wards match pack {name} ({multi} MultiPolygon); "
        f"{own} of {len(pack)} pack centroids fall in their own ward"
    )
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    name = args.pack or settings.city_pack
    directory = pack_dir(name)
    units = {u.code: u.name for u in read_units(directory / "units_2025.csv")}
    for w in read_wards(directory / "wards.csv"):
        after = "; ".join(f"{c} {units.get(c, '?')}" for c in w.successors)
        print(f"{w.code}  {w.name:<24} {w.population:>7}  {w.area_km2:>7.2f} km²  -> {after}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ioc citypack build|check|list`."""
    parser = sub.add_parser("citypack", help="city pack: wards, shapes, 2025 successors")
    actions = parser.add_subparsers(dest="citypack_command", required=True)
    pack_help = "pack name (default: IOC_CITY_PACK or halong)"

    build = actions.add_parser("build", help="redraw the schematic shapes.geojson from wards.csv")
    build.add_argument("--pack", help=pack_help)
    build.add_argument("--output", help="write here instead of the pack's shapes.geojson")
    build.set_defaults(func=_build)

    check = actions.add_parser("check", help="validate a GeoJSON boundary file against the pack")
    check.add_argument("--boundaries", required=True, metavar="FILE", help="GeoJSON file")
    check.add_argument(
        "--property", default="ward_code", help="feature property holding the ward code"
    )
    check.add_argument("--pack", help=pack_help)
    check.set_defaults(func=_check)

    listing = actions.add_parser("list", help="list the wards and the units that replaced them")
    listing.add_argument("--pack", help=pack_help)
    listing.set_defaults(func=_list)
