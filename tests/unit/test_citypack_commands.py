"""`ioc citypack build|check|list` through the real CLI entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ioc.app.cli import main
from ioc.core.citypack import load_pack
from ioc.core.citypack.pack import PACKS_DIR
from tests.support.shapes import assert_same_shapes


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("IOC_"):
            monkeypatch.delenv(key)


def _feature(code: object, prop: str = "ward_code") -> dict[str, object]:
    w = load_pack("halong").ward(str(code).zfill(5))
    d = 0.002
    ring = [
        [w.lon - d, w.lat - d],
        [w.lon + d, w.lat - d],
        [w.lon + d, w.lat + d],
        [w.lon - d, w.lat + d],
        [w.lon - d, w.lat - d],
    ]
    return {
        "type": "Feature",
        "properties": {prop: code},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _write(path: Path, features: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_build_writes_the_committed_shapes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shapes.geojson"
    assert main(["citypack", "build", "--pack", "halong", "--output", str(out)]) == 0
    assert_same_shapes(out.read_bytes(), (PACKS_DIR / "halong" / "shapes.geojson").read_bytes())
    assert "33 wards" in capsys.readouterr().out


def test_check_accepts_a_matching_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    codes = sorted(load_pack("halong").codes)
    path = _write(tmp_path / "ok.geojson", [_feature(int(c), "ma") for c in codes])
    assert main(["citypack", "check", "--boundaries", str(path), "--property", "ma"]) == 0
    out = capsys.readouterr().out
    assert "33 wards match pack halong" in out
    assert "33 of 33 pack centroids fall in their own ward" in out


def test_check_lists_unknown_and_missing_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = sorted(load_pack("halong").codes)
    features = [_feature(c) for c in codes[1:]]
    features[0]["properties"] = {"ward_code": "54321"}
    path = _write(tmp_path / "bad.geojson", features)
    assert main(["citypack", "check", "--boundaries", str(path)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err
    assert err.startswith("ioc: error: boundary file")
    assert f"unknown ward code(s) 54321; missing ward code(s) {codes[0]}, {codes[1]}" in err
    assert "Traceback" not in captured.err


def test_check_with_the_wrong_property_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = sorted(load_pack("halong").codes)
    path = _write(tmp_path / "ok.geojson", [_feature(c, "ma") for c in codes])
    assert main(["citypack", "check", "--boundaries", str(path)]) == 1
    assert "33 feature(s) without a 5-digit 'ward_code' property" in capsys.readouterr().err


def test_list_prints_every_ward_and_its_successors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["citypack", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 33
    hakhau = next(line for line in lines if line.startswith("06655"))
    assert "06706 Phường Tuần Châu; 06661 Phường Việt Hưng" in hakhau


def test_unknown_pack_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["citypack", "build", "--pack", "atlantis"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown city pack 'atlantis' (available: halong" in err


def test_pack_comes_from_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IOC_CITY_PACK", "atlantis")
    assert main(["citypack", "list"]) == 1
    assert "'atlantis'" in capsys.readouterr().err
