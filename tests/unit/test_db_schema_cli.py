"""IOC_DB_SCHEMA as the one schema: `ioc db` flags default to it, hints name it (no services)."""

from __future__ import annotations

from typing import Any

import pytest

from ioc.app.cli import build_parser, main
from ioc.core.db.schema import (
    IOC_TABLES,
    SchemaNotMigratedError,
    migrate_hint,
    newest_versions,
    require_migrated,
)


@pytest.mark.parametrize("action", ["migrate", "status"])
def test_schema_flag_has_no_default_of_its_own(action: str) -> None:
    # A default here used to beat IOC_DB_SCHEMA: `IOC_DB_SCHEMA=rt ioc db migrate` did public.
    assert build_parser().parse_args(["db", action]).schema is None
    assert build_parser().parse_args(["db", action, "--schema", "rt"]).schema == "rt"


def test_a_bad_schema_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["db", "migrate", "--schema", "bad name!"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--schema='bad name!'" in err


def test_migrate_hint_names_the_schema() -> None:
    assert migrate_hint("public") == "ioc db migrate"
    assert migrate_hint("rt") == "IOC_DB_SCHEMA=rt ioc db migrate"


class _Catalog:
    """Answers require_migrated's catalog query with the given table names, and its query of the
    migration record with the given versions."""

    def __init__(self, tables: list[str], versions: tuple[int, ...] | None = None) -> None:
        self.tables = tables
        self.versions = newest_versions() if versions is None else versions
        self.params: dict[str, Any] | None = {}

    def execute(self, query: object, params: dict[str, Any] | None = None) -> _Catalog:
        self.params = params
        return self

    def fetchall(self) -> list[tuple[object, ...]]:
        if self.params is None:  # SELECT version, checksum FROM <schema>.schema_migrations
            return [(v, "sum") for v in self.versions]
        return [(t,) for t in self.tables if t in self.params["tables"]]


def test_require_migrated_says_what_to_run() -> None:
    require_migrated(_Catalog(list(IOC_TABLES)), "rt")  # type: ignore[arg-type]
    with pytest.raises(SchemaNotMigratedError) as info:
        require_migrated(_Catalog([]), "rt")  # type: ignore[arg-type]
    assert str(info.value) == "schema 'rt' has no IOC tables; run: IOC_DB_SCHEMA=rt ioc db migrate"
    with pytest.raises(SchemaNotMigratedError) as info:
        require_migrated(_Catalog(["schema_migrations"]), "public")  # type: ignore[arg-type]
    assert str(info.value) == (
        "schema 'public' lacks IOC tables (feed_health, dead_letters); run: ioc db migrate"
    )


def test_require_migrated_wants_every_shipped_migration() -> None:
    newest = newest_versions()
    assert len(newest) >= 9
    older = _Catalog(list(IOC_TABLES), newest[:-1])
    with pytest.raises(SchemaNotMigratedError) as info:
        require_migrated(older, "rt")  # type: ignore[arg-type]
    assert str(info.value) == (
        f"schema 'rt' lacks migrations {newest[-1]:03d}; run: IOC_DB_SCHEMA=rt ioc db migrate"
    )
