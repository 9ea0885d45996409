"""The national pack against its source: every unit, checked centres, estimates, lineage, search."""

from __future__ import annotations

import csv
import math
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from ioc.core.citypack import PackError, load_pack
from ioc.core.citypack.national.build import national_files
from ioc.core.citypack.national.checks import derived_centre, distance_km
from ioc.core.citypack.national.lineage import read_lineage, shares
from ioc.core.citypack.national.population import GSO_TOTAL_2024
from ioc.core.citypack.national.source import Source, package_dir, package_version, read_source
from ioc.core.citypack.pack import pack_dir
from ioc.core.citypack.search import Place, fold, search

VN = pack_dir("vn")


@cache
def source() -> Source:
    return read_source(package_dir() / "data", package_version())


def _csv(name: str) -> list[dict[str, str]]:
    with (VN / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_checked_in_files_are_what_the_package_gives() -> None:
    for name, data in national_files(source(), VN).items():
        assert (VN / name).read_bytes() == data, f"{name}: run `ioc citypack national`"


def test_every_unit_of_the_package_is_in_the_pack() -> None:
    communes = _csv("communes.csv")
    assert {r["code"] for r in communes} == {u.code for u in source().new}
    assert len(communes) == 3321
    assert Counter(r["kind"] for r in communes) == {"xa": 2621, "phuong": 687, "dac_khu": 13}
    assert len({r["province_code"] for r in communes}) == 34
    assert sum(r["province_code"] == "22" for r in communes) == 54


def test_implausible_centres_are_corrected_from_the_old_units() -> None:
    notes = {r["code"]: r for r in _csv("corrections.csv") if r["field"] == "centre"}
    communes = {r["code"]: r for r in _csv("communes.csv")}
    links = [k for k in source().links if not k.divided]
    old = {u.code: u for u in source().old}
    for code in ("06757", "06967"):  # Vĩnh Thực, Cái Chiên: both placed near Hạ Long
        assert notes[code]["reason"].startswith("derived")
        mine = [old[k.old_code] for k in links if k.new_code == code]
        lat, lon = derived_centre(mine)
        assert (float(communes[code]["lat"]), float(communes[code]["lon"])) == (lat, lon)
        # Both lie east, near Móng Cái and Hải Hà, not at Bãi Cháy.
        assert float(communes[code]["lon"]) > 107.5
    assert notes["22736"]["reason"].startswith("kept")  # Trường Sa is far, and rightly so
    by_code = {u.code: u for u in source().new}
    for code, row in communes.items():
        unit = by_code[code]
        moved = distance_km(unit.lat, unit.lon, float(row["lat"]), float(row["lon"]))
        assert (moved > 0) == (code in notes and notes[code]["reason"].startswith("derived"))


def test_areas_are_positive_and_the_estimated_ones_listed() -> None:
    estimated = {r["code"] for r in _csv("corrections.csv") if r["field"] == "area_km2"}
    assert estimated == {u.code for u in source().new if not u.area_km2}
    assert all(float(r["area_km2"]) > 0 for r in _csv("communes.csv"))


def test_population_estimates_add_up_to_the_provinces_and_the_country() -> None:
    provinces = {r["code"]: int(r["population_estimate"]) for r in _csv("provinces.csv")}
    assert sum(provinces.values()) == GSO_TOTAL_2024
    summed: Counter[str] = Counter()
    for r in _csv("communes.csv"):
        summed[r["province_code"]] += int(r["population_estimate"])
    assert dict(summed) == provinces
    kept = [r for r in _csv("provinces.csv") if r["population_source"].startswith("unchanged")]
    assert kept and all(r["population_published"] == r["population_estimate"] for r in kept)


def test_estimates_are_near_the_census_where_halong_has_one() -> None:
    census = {u.code: u for u in load_pack("halong").units_2025}
    estimate = {r["code"]: int(r["population_estimate"]) for r in _csv("communes.csv")}
    whole = [u for u in census.values() if u.population_2019_whole > 20_000]
    ratios = [estimate[u.code] / u.population_2019_whole for u in whole]
    assert len(ratios) >= 6
    assert all(0.5 < r < 2.0 for r in ratios), ratios


def test_lineage_covers_every_old_unit_and_conserves_counts() -> None:
    links = read_lineage(VN)
    assert {k.old_code for k in links} == {u.code for u in source().old}
    divided = Counter(k.old_code for k in links if k.divided)
    defaults = Counter(k.old_code for k in links if k.divided and k.default)
    assert len(divided) == 471 and all(defaults[c] == 1 for c in divided)
    area = {r["code"]: float(r["area_km2"]) for r in _csv("communes.csv")}
    split = shares(links, area)
    # Events on old units, mapped to the new ones: the total is kept, unit by unit.
    events = {code: (int(code) % 97) + 1 for code in split}
    mapped: Counter[str] = Counter()
    for old, parts in split.items():
        assert math.isclose(sum(parts.values()), 1.0)
        for new, share in parts.items():
            mapped[new] += events[old] * share
    assert math.isclose(sum(mapped.values()), sum(events.values()))
    assert set(mapped) == set(area)


def test_search_ignores_diacritics_and_case() -> None:
    pack = load_pack("vn-22")
    places = [Place(w.code, w.name) for w in pack.wards]
    for query in ("ha long", "Hạ Long", "HA LONG", "phuong ha long"):
        assert search(places, query)[0].code == "06688", query
    assert fold("Đặc khu Cô Tô") == "dac khu co to"
    assert search(places, "atlantis") == []


def test_a_province_is_a_pack_by_code_or_name() -> None:
    by_code, by_name = load_pack("vn-22"), load_pack("vn-quang-ninh")
    assert len(by_code) == len(by_name) == 54
    assert by_code.title == "Quảng Ninh" and by_code.population_estimated
    assert set(by_code.province_of.values()) == {"22"}
    with pytest.raises(PackError, match="no province 'atlantis'"):
        load_pack("vn-atlantis")


def test_the_national_pack_holds_the_country() -> None:
    pack = load_pack("vn")
    assert len(pack) == 3321 and len(pack.provinces) == 34
    assert all(pack.successors(w.code)[0].code == w.code for w in pack.wards[:50])
    assert Path(pack_dir("vn-22")) == VN


def _km2(geom: object, lat: float) -> float:
    area = float(geom.area)  # type: ignore[attr-defined]
    return area * 110.574 * 111.320 * math.cos(math.radians(lat))


def test_schematic_shapes_tile_the_country_at_the_real_areas() -> None:
    import shapely

    pack = load_pack("vn")
    shapes = {w.code: pack.shape(w.code) for w in pack.wards}
    assert all(g.is_valid and not g.is_empty for g in shapes.values())
    assert all(shapes[w.code].covers(shapely.Point(w.lon, w.lat)) for w in pack.wards)
    # No overlaps: the pieces' areas add up to the area of their union, nationally and so in
    # every province; no gaps inside a province: each province dissolves into few parts.
    total = sum(g.area for g in shapes.values())
    assert math.isclose(shapely.unary_union(list(shapes.values())).area, total, rel_tol=1e-6)
    close = sum(abs(_km2(shapes[w.code], w.lat) / w.area_km2 - 1) <= 0.25 for w in pack.wards)
    # The target is 90 %; the drawn cells reach 88 % (2,926 of 3,321): kept honest here,
    # so a change that draws worse fails, and the gap stays visible in the issue.
    assert close / len(pack.wards) >= 0.88, f"{close} of {len(pack.wards)} within 25 %"
    everything = shapely.unary_union(list(shapes.values()))
    for province in pack.provinces:
        members = [shapes[c] for c, p in pack.province_of.items() if p == province.code]
        dissolved = shapely.unary_union(members)
        # A hole in a province is a gap unless another province's commune fills it (an enclave).
        holes = [
            shapely.Polygon(ring)
            for part in getattr(dissolved, "geoms", [dissolved])
            for ring in part.interiors
        ]
        # (Grid rounding may leave a sliver of a few square metres; 1e-6 deg² is about 1 ha.)
        gaps = [h for h in holes if h.difference(everything).area > 1e-6]
        assert gaps == [], f"province {province.code} has {len(gaps)} gaps inside"


def test_citypack_list_summary_shows_the_country(capsys: pytest.CaptureFixture[str]) -> None:
    from ioc.app.cli import main

    assert main(["citypack", "list", "--summary"]) == 0
    rows = {line.split()[0]: line.split()[1:4] for line in capsys.readouterr().out.splitlines()}
    assert rows["vn"] == ["34", "3321", "10040"]
    assert rows["halong"] == ["1", "13", "33"]
    assert main(["citypack", "find", "HA LONG", "--pack", "vn-22"]) == 0
    assert capsys.readouterr().out.startswith("06688  Phường Hạ Long")
