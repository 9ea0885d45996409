"""City pack facts: the Hạ Long wards, their 2025 successors, the pack API and its errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ioc.core.citypack import CityPack, PackError, Unit2025, Ward, available_packs, load_pack
from ioc.core.citypack import pack as pack_module
from ioc.core.citypack.model import check_mapping, read_units, read_wards
from ioc.core.errors import IocError

HALONG = Path(pack_module.__file__).resolve().parent.parent / "packs" / "halong"


def halong() -> CityPack:
    return load_pack("halong")


def test_identity_and_counts() -> None:
    p = halong()
    assert p.name == "halong"
    assert p.title == "Hạ Long"
    assert len(p.wards) == 33
    assert len(p.units_2025) == 13
    assert [w.code for w in p.wards] == sorted(w.code for w in p.wards)
    assert p.codes == frozenset(w.code for w in p.wards)
    assert "halong" in available_packs()


def test_known_wards_from_the_census() -> None:
    p = halong()
    assert p.ward("06649") == Ward(
        code="06649",
        name="Phường Hà Khánh",
        kind="phuong",
        population=8505,
        area_km2=32.63,
        lat=21.00484,
        lon=107.13337,
        successors=("06658",),
    )
    assert p.ward("07033").kind == "xa"
    assert p.ward("07033").population == 744
    kinds = [w.kind for w in p.wards]
    assert kinds.count("phuong") == 21
    assert kinds.count("xa") == 12
    # Sum of the 2019 census column of the reference facts, added up by hand.
    assert p.population_total == 322_710


def test_contains_and_unknown_codes() -> None:
    p = halong()
    assert "06649" in p
    assert "99999" not in p
    assert 6649 not in p
    with pytest.raises(KeyError):
        p.ward("99999")


def test_split_wards_have_two_successors() -> None:
    p = halong()
    split = {w.code: w.successors for w in p.wards if len(w.successors) > 1}
    assert split == {"06655": ("06706", "06661"), "07042": ("07060", "07030")}
    assert [u.name for u in p.successors("06655")] == ["Phường Tuần Châu", "Phường Việt Hưng"]
    assert p.ward("06682").successors == ("06685",)  # Yết Kiêu went into Hồng Gai


def test_mapping_agrees_both_ways() -> None:
    p = halong()
    for unit in p.units_2025:
        assert isinstance(unit, Unit2025)
        listed = sorted(w.code for w in p.wards if unit.code in w.successors)
        assert list(unit.constituents) == listed
    assert {s for w in p.wards for s in w.successors} == {u.code for u in p.units_2025}


def test_unit_populations_of_whole_constituents() -> None:
    p = halong()
    partial = {w.code for w in p.wards if len(w.successors) > 1}
    outside = {"06979", "06985"}  # took in communes of Ba Chẽ district too
    checked = 0
    for unit in p.units_2025:
        if unit.code in outside:
            assert unit.population_2019_whole > sum(p.ward(c).population for c in unit.constituents)
            continue
        whole = [c for c in unit.constituents if c not in partial]
        assert unit.population_2019_whole == sum(p.ward(c).population for c in whole)
        checked += 1
    assert checked == 11
    assert p.unit("06652").population_2019_whole == 12238 + 15338


def test_centroids_lie_in_quang_ninh() -> None:
    for w in halong().wards:
        assert 20.9 < w.lat < 21.25
        assert 106.8 < w.lon < 107.25
        assert w.area_km2 > 0


def test_geojson_properties() -> None:
    doc = halong().geojson()
    assert doc["type"] == "FeatureCollection"
    props = [f["properties"] for f in doc["features"]]
    assert [q["ward_code"] for q in props] == sorted(halong().codes)
    assert set(props[0]) == {"ward_code", "name", "kind", "population"}
    assert sum(q["population"] for q in props) == 322_710
    doc["features"].clear()  # a fresh dict each time: callers may not spoil the pack
    assert len(halong().geojson()["features"]) == 33


def test_load_pack_is_cached() -> None:
    assert load_pack("halong") is load_pack("halong")


def test_unknown_pack_is_one_line_ioc_error() -> None:
    with pytest.raises(IocError) as err:
        load_pack("atlantis")
    assert "unknown city pack 'atlantis'" in str(err.value)
    assert "halong" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(PackError):
        load_pack("../halong")


def _copy_pack(tmp_path: Path) -> Path:
    target = tmp_path / "halong"
    shutil.copytree(HALONG, target)
    return target


def test_mapping_mismatch_is_reported(tmp_path: Path) -> None:
    d = _copy_pack(tmp_path)
    text = (d / "units_2025.csv").read_text(encoding="utf-8")
    (d / "units_2025.csv").write_text(text.replace("06652;06664", "06652"), encoding="utf-8")
    with pytest.raises(PackError, match="06664->06652"):
        check_mapping(read_wards(d / "wards.csv"), read_units(d / "units_2025.csv"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("06649,Phường Hà Khánh,phuong", "6649,Phường Hà Khánh,phuong", "5-digit"),
        ("phuong,8505", "town,8505", "kind"),
        (",8505,32.63,", ",85x5,32.63,", "population"),
        (",8505,32.63,", ",8505,-1,", "area_km2"),
        ("21.00484,107.13337", "121.00484,107.13337", "out of range"),
    ],
)
def test_bad_ward_rows(tmp_path: Path, old: str, new: str, message: str) -> None:
    d = _copy_pack(tmp_path)
    path = d / "wards.csv"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(PackError, match=message) as err:
        read_wards(path)
    assert f"{path}:2:" in str(err.value)
