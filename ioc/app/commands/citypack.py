"""`ioc citypack`: draw shapes, build the national pack, check boundaries, list and find units."""

from __future__ import annotations

import argparse
from pathlib import Path

from ioc.app.cli import CommandError
from ioc.app.settings import Settings
from ioc.core.citypack.model import Ward, read_units, read_wards, read_water
from ioc.core.citypack.national.build import national_files
from ioc.core.citypack.national.load import (
    NATIONAL,
    is_national,
    read_communes,
    read_provinces,
    selected_provinces,
)
from ioc.core.citypack.national.shapes import national_shapes
from ioc.core.citypack.national.source import package_dir, package_version, read_source
from ioc.core.citypack.pack import SHAPES_FILE, CityPack, available_packs, load_pack, pack_dir
from ioc.core.citypack.schematic import schematic_shapes
from ioc.core.citypack.search import Place, search
from ioc.core.citypack.shapes import dump_geojson, feature_collection


def build_geojson(name: str) -> bytes:
    """The schematic shapes.geojson of a pack, drawn from its wards.csv and water.csv."""
    directory = pack_dir(name)
    wards = read_wards(directory / "wards.csv")
    shapes = schematic_shapes(wards, read_water(directory / "water.csv"))
    return dump_geojson(feature_collection(wards, shapes))


def _build_national(name: str, output: str | None) -> int:
    """Each selected province's shapes/<code>.geojson, cut from the one national land."""
    directory = pack_dir(name)
    chosen = selected_provinces(name, read_provinces(directory))
    wards, province_of = read_communes(directory, tuple(p.code for p in read_provinces(directory)))
    by_province: dict[str, list[Ward]] = {}
    for w in wards:
        by_province.setdefault(province_of[w.code], []).append(w)
    target_dir = Path(output) if output else directory / "shapes"
    target_dir.mkdir(parents=True, exist_ok=True)
    for code, shapes in national_shapes(by_province, only=chosen).items():
        data = dump_geojson(feature_collection(by_province[code], shapes))
        target = target_dir / f"{code}.geojson"
        target.write_bytes(data)
        print(f"vn-{code}: wrote {len(shapes)} commune shapes ({len(data)} bytes) to {target}")
    return 0


def _build(args: argparse.Namespace, settings: Settings) -> int:
    name = args.pack or settings.city_pack
    if is_national(name):
        return _build_national(name, args.output)
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


def _national(args: argparse.Namespace, settings: Settings) -> int:
    """Regenerate the national pack's CSV files from the installed vietnamadminunits."""
    directory = Path(args.output) if args.output else pack_dir(NATIONAL)
    source = read_source(package_dir() / "data", package_version())
    files = national_files(source, pack_dir(NATIONAL))
    for name, data in files.items():
        (directory / name).write_bytes(data)
        rows = data.count(b"\n") - 1
        print(f"{directory / name}: {rows} rows")
    print(f"from vietnamadminunits {source.version}; corrections in corrections.csv")
    return 0


def _summary(_: argparse.Namespace, settings: Settings) -> int:
    """Per pack: its provinces, its units after the reform and the units before it."""
    print(f"{'pack':<8} {'provinces':>9} {'units 2025':>10} {'units before':>12}  title")
    for name in available_packs():
        pack = load_pack(name)
        before = _units_before(name, pack)
        provinces = len(pack.provinces) or 1
        print(f"{name:<8} {provinces:>9} {len(pack.units_2025):>10} {before:>12}  {pack.title}")
    return 0


def _units_before(name: str, pack: CityPack) -> int:
    if not is_national(name):
        return len(pack.wards)
    with (pack_dir(name) / "lineage.csv").open(encoding="utf-8") as fh:
        return len({line.split(",", 1)[0] for line in fh}) - 1


def _find(args: argparse.Namespace, settings: Settings) -> int:
    pack = load_pack(args.pack or settings.city_pack)
    names = {p.code: p.short_name for p in pack.provinces}
    places = [
        Place(w.code, w.name, names.get(pack.province_of.get(w.code, ""), "")) for w in pack.wards
    ]
    found = search(places, args.query, limit=args.limit)
    for place in found:
        print(f"{place.code}  {place.name}" + (f", {place.within}" if place.within else ""))
    if not found:
        raise CommandError(f"no unit of pack {pack.name} is called {args.query!r}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    if args.summary:
        return _summary(args, settings)
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
    listing.add_argument(
        "--summary", action="store_true", help="per pack: provinces, units after and before 2025"
    )
    listing.set_defaults(func=_list)

    find = actions.add_parser("find", help="find units by name, with or without diacritics")
    find.add_argument("query", help="a name, e.g. 'ha long'")
    find.add_argument("--pack", help=pack_help)
    find.add_argument("--limit", type=int, default=10, help="at most this many (default 10)")
    find.set_defaults(func=_find)

    national = actions.add_parser(
        "national", help="regenerate the national pack's CSV files from vietnamadminunits"
    )
    national.add_argument("--output", help="write into this directory instead of the pack")
    national.set_defaults(func=_national)
