"""House rules a machine checks: module and function sizes, docstrings, who reads the env."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ioc", "streams", "simulators", "layouts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_modules_to_check() -> None:
    assert len(_modules()) > 100


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_module_is_small_and_says_what_it_is(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines"
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc, f"{_name(path)} has no module docstring"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_name(path)}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def _reads_environment(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
        for node in ast.walk(tree)
    )


def test_only_the_application_reads_the_environment() -> None:
    readers = [
        _name(p)
        for p in _modules()
        if _reads_environment(ast.parse(p.read_text(encoding="utf-8")))
        and not _name(p).startswith("ioc/app/")
    ]
    assert readers == []


def test_the_environment_check_sees_a_reader() -> None:
    assert _reads_environment(ast.parse("import os\nx = os.environ.get('IOC_X')"))
    assert _reads_environment(ast.parse("import os\nx = os.getenv('IOC_X')"))
    assert not _reads_environment(ast.parse("environ = {}\nx = environ.get('IOC_X')"))
