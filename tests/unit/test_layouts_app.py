"""The app's wiring without a database: who may call each callback, the validation layout."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash import Dash
from psycopg_pool import ConnectionPool

from ioc.core.citypack import load_pack
from ioc.core.targets import DashboardConfig
from layouts.app import create_app
from layouts.registry import Registered

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"


@pytest.fixture(scope="module")
def app() -> Iterator[Dash]:
    # Never opened: building the app reads nothing.
    pool: Any = ConnectionPool("", open=False)
    built = create_app(load_pack("halong"), DashboardConfig(), pool)
    yield built
    built.server.config["IOC_DATA"].close()


def _key(app: Dash, output: str) -> str:
    found = [k for k in app.callback_map if output in k]
    assert len(found) == 1, (output, found)
    return found[0]


def test_every_server_callback_has_the_permission_of_its_page(app: Dash) -> None:
    gate = app.server.extensions["ioc_gate"]
    served = {k for k, v in app.callback_map.items() if "callback" in v}
    assert set(gate.permissions) == served, "client-side ones run in the browser only"
    want = {
        "page.children": "view",
        "lang.data": "view",
        "tt-span.data": "view",
        "tt-as-of.data": "view",
        "tt-viewing.children": "view",
        "wall-geojson.hideout": "wall",
        "wall-selected.data": "wall",
        "url.pathname": "wall",
        "wall-acked.data": "ack",
        "ward-kpis.children": "ward",
        "ward-download.data": "export",
    }
    assert {o: gate.permissions[_key(app, o)] for o in want} == want
    assert len(served) == len(want)
    allowed = Registered(gate.permissions)
    assert allowed.roles(_key(app, "wall-acked.data")) == {"operator", "admin"}
    assert allowed.roles(_key(app, "ward-download.data")) == {"manager", "admin"}
    assert "display" in allowed.roles(_key(app, "wall-geojson.hideout"))


def _ids(component: Any) -> Iterator[str]:
    for child in component._traverse_with_paths():
        ident = getattr(child[1], "id", None)
        if ident is not None:
            yield ident if isinstance(ident, str) else json.dumps(ident, sort_keys=True)


def test_callbacks_are_checked_against_every_page_at_once(app: Dash) -> None:
    assert app.config.suppress_callback_exceptions is False
    known = set(_ids(app.validation_layout))
    wildcard_types = {"tile", "tile-value", "tile-trend", "tile-target", "ack"}
    for spec in app.callback_map.values():
        for dep in [*spec["inputs"], *spec["state"]]:
            ident = dep["id"]
            if ident.startswith("{"):
                assert json.loads(ident)["type"] in wildcard_types, ident
            else:
                assert ident in known, ident
    parts = (c for _path, c in app.validation_layout._traverse_with_paths())
    geojson = next(c for c in parts if getattr(c, "id", None) == "wall-geojson")
    assert geojson.data["features"] == [], "no ward shapes in every page load's config"


def test_layouts_import_nothing_of_the_application() -> None:
    for path in LAYOUTS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "ioc.app" or n.startswith("ioc.app.") for n in names), path
