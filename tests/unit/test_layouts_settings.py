"""Dashboard settings: IOC_MAP_TILES_URL parsing, and the pack's dashboard config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.app.settings import Settings, SettingsError
from ioc.core.citypack import PackError, load_pack
from ioc.core.targets import KPI_FEED, load_config, parse_config, read_config

CODES = load_pack("halong").codes


def test_tiles_url_defaults_to_none_and_accepts_a_template() -> None:
    assert Settings.from_env({}).map_tiles_url == ""
    url = "https://tiles.example.org/{z}/{x}/{y}.png"
    assert Settings.from_env({"IOC_MAP_TILES_URL": f" {url} "}).map_tiles_url == url
    assert Settings.from_env({"IOC_MAP_TILES_URL": ""}).map_tiles_url == ""


@pytest.mark.parametrize(
    "raw", ["tiles.example.org/{z}/{x}/{y}", "https://x.org/tiles.png", "ftp://a/{z}/{x}/{y}"]
)
def test_bad_tiles_url_is_one_line_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"IOC_MAP_TILES_URL": raw})
    assert "IOC_MAP_TILES_URL" in str(info.value) and "\n" not in str(info.value)


def test_shipped_halong_config_has_the_issue_targets() -> None:
    cfg = load_config("halong", CODES)
    assert cfg.target("online_share") == pytest.approx(0.80)
    assert cfg.target("acceptance_points") == 8700
    assert cfg.target("online_share", "06649") is None
    assert cfg.alerts.aqi_min == 151
    assert set(cfg.wall.rotation) <= set(KPI_FEED)
    assert cfg.stale_after_s["air_quality"] > cfg.stale_after_s["payments"]


def test_ward_targets_and_defaults() -> None:
    cfg = parse_config(
        {"targets": {"acceptance_points": {"city": 100, "wards": {"06649": 7}}}}, "x", CODES
    )
    assert cfg.target("acceptance_points") == 100
    assert cfg.target("acceptance_points", "06649") == 7
    assert cfg.target("acceptance_points", "06652") is None
    assert cfg.alerts.feed_stalled_after_s == 60


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"targets": {"no_such_kpi": {"city": 1}}}, "no_such_kpi"),
        ({"targets": {"online_share": {"city": "80%"}}}, "must be a number"),
        ({"targets": {"online_share": {"wards": {"99999": 1}}}}, "99999"),
        ({"wall": {"rotation": ["aqi", "nope"]}}, "nope"),
        ({"wall": {"refresh_ms": 0}}, "refresh_ms"),
        ({"feeds": {"parking": {"stale_after_s": 5}}}, "parking"),
        ({"alerts": {"aqi_min": True}}, "aqi_min"),
        ({"colour": {}}, "colour"),
    ],
)
def test_bad_config_names_the_entry(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(PackError) as info:
        parse_config(raw, "targets.toml", CODES)
    assert needle in str(info.value)


def test_missing_file_gives_defaults_and_bad_toml_is_one_line(tmp_path: Path) -> None:
    assert read_config(tmp_path / "none.toml", CODES).targets == {}
    bad = tmp_path / "t.toml"
    bad.write_text("[wall\n", encoding="utf-8")
    with pytest.raises(PackError) as info:
        read_config(bad, CODES)
    assert str(bad) in str(info.value)
