"""Integration fixtures: the real Kafka broker and PostgreSQL server of `ioc services up`.

Services already started by `ioc services up` (same data dir, `<repo>/.ioc`) are reused and left
running; services this session had to start are stopped when it ends. A service that cannot be
started or does not answer fails the run (never a skip: CI must not pass without them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from kafka import KafkaAdminClient
from playwright.sync_api import Browser, Page, sync_playwright
from psycopg import sql

from ioc.app.services import manager
from ioc.app.services.kafka import metadata_answers
from ioc.app.services.state import (
    DATABASE,
    PLAIN_DATABASE,
    ConnectionInfo,
    ServiceError,
    default_cache_dir,
    load_state,
    read_connection_info,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DATA_DIR = REPO_ROOT / ".ioc"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the `integration` marker."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


def _versions(info: ConnectionInfo) -> list[str]:
    """The real server versions, asked from the servers themselves where they tell."""
    lines: list[str] = []
    if info.admin_url:
        try:
            with psycopg.connect(info.admin_url, connect_timeout=5) as conn:
                row = conn.execute("SELECT version()").fetchone()
            lines.append(f"PostgreSQL server: {row[0] if row else 'unknown'}")
            lines.append(
                f"Test database: {urlsplit(info.admin_url).path.lstrip('/')} on "
                f"{_engine(info.admin_url)}"
            )
        except psycopg.Error as exc:
            lines.append(f"PostgreSQL server: not answering ({exc})")
    if info.kafka_bootstrap:
        entry = load_state(DATA_DIR).get("kafka", {})
        lines.append(
            f"Kafka broker: Apache Kafka {entry.get('version', 'unknown')} (KRaft) at "
            f"{info.kafka_bootstrap}, jars {entry.get('libs', '?')}"
        )
    return lines


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Versions in the session header when services are already up (see also `services`)."""
    try:
        info = read_connection_info(DATA_DIR)
    except ServiceError:
        return []
    return _versions(_in_test_database(info))


def _write(config: pytest.Config, line: str) -> None:
    """A line in pytest's own output even while output capture is on (CI logs show it)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        reporter.ensure_newline()
        reporter.write_line(line)


@pytest.fixture(scope="session")
def services(request: pytest.FixtureRequest) -> Iterator[ConnectionInfo]:
    """Connection details of the running services; starts the missing ones for this session.

    Services this session starts are stopped by the last concurrent session to finish (a lease
    per session), so parallel sessions never pull a broker from under each other; services
    started with `ioc services up` are left running.
    """
    config = request.config

    def log(line: str) -> None:
        _write(config, f"integration: {line}")

    lease = manager.acquire_lease(DATA_DIR, log)
    try:
        try:
            info, started = manager.up(
                DATA_DIR, default_cache_dir(os.environ), None, log=log, owner="session"
            )
        except ServiceError as exc:
            pytest.fail(f"integration services could not start: {exc}", pytrace=False)
        if started:
            log(f"started {', '.join(started)} in {DATA_DIR} for this session")
        info = _in_test_database(info)
        _check(info)
        for line in _versions(info):
            log(line)
        yield info
    finally:
        manager.release_lease(DATA_DIR, lease, log)


def suite_database() -> str:
    """The database the suite runs in: ioc (TimescaleDB when the server has it) by default, or
    IOC_TEST_DATABASE=ioc_plain, the same server's database kept without TimescaleDB."""
    return os.environ.get("IOC_TEST_DATABASE", DATABASE)


def _in_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _in_test_database(info: ConnectionInfo) -> ConnectionInfo:
    dbname = suite_database()
    if dbname == DATABASE:
        return info
    if dbname != PLAIN_DATABASE:
        pytest.fail(f"IOC_TEST_DATABASE={dbname!r}: use {DATABASE} or {PLAIN_DATABASE}")
    urls = (info.admin_url, info.writer_url, info.reader_url)
    if not all(urls):
        return info
    return dataclasses.replace(
        info,
        admin_url=_in_database(str(info.admin_url), dbname),
        writer_url=_in_database(str(info.writer_url), dbname),
        reader_url=_in_database(str(info.reader_url), dbname),
    )


def _engine(admin_url: str) -> str:
    """'TimescaleDB <version>' or 'plain PostgreSQL': the test database as migrate sees it."""
    with psycopg.connect(admin_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        opt = conn.execute("SELECT current_setting('ioc.timescaledb', true)").fetchone()
    if row is None or (opt is not None and opt[0] == "off"):
        return "plain PostgreSQL"
    return f"TimescaleDB {row[0]}"


def _check(info: ConnectionInfo) -> None:
    if not info.admin_url or not info.writer_url or not info.reader_url:
        pytest.fail(f"PostgreSQL is not up (state in {DATA_DIR})", pytrace=False)
    if not info.kafka_bootstrap:
        pytest.fail(f"Kafka is not up (state in {DATA_DIR})", pytrace=False)
    try:
        with psycopg.connect(info.admin_url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL does not answer: {exc}", pytrace=False)
    if not metadata_answers(info.kafka_bootstrap, timeout_ms=10_000):
        pytest.fail(f"Kafka at {info.kafka_bootstrap} does not answer metadata", pytrace=False)


@pytest.fixture(scope="session")
def pg_admin_url(services: ConnectionInfo) -> str:
    """Superuser (ioc_admin) URL of database ioc."""
    assert services.admin_url is not None
    return services.admin_url


@pytest.fixture
def pg_schema(pg_admin_url: str) -> Iterator[str]:
    """A fresh schema t_<hex> in database ioc for one test, dropped (CASCADE) afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def second_schema(pg_admin_url: str) -> Iterator[str]:
    """Another fresh schema, for tests that compare two databases (migrate creates it)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def kafka_bootstrap(services: ConnectionInfo) -> str:
    """host:port of the real broker."""
    assert services.kafka_bootstrap is not None
    return services.kafka_bootstrap


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """`make(base, partitions=3) -> name`: creates `<base>.t<hex>` and deletes it after the test."""
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ioc-tests")
    created: list[str] = []

    def make(base: str, partitions: int = 3) -> str:
        name = f"{base}.t{uuid.uuid4().hex[:10]}"
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            # A topic left behind is harmless (unique name), so cleanup never fails a test.
            with contextlib.suppress(Exception):
                admin.delete_topics(created)
        admin.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, one per test module: Playwright's sync API allows one
    running instance per thread, and some modules (the demo's) start their own."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A full-HD page that fails the test on any JavaScript error.

    bypass_csp: these pages check data, not headers; test_auth_browser.py checks the CSP.
    """
    context = browser.new_context(
        viewport={"width": 1920, "height": 1080}, accept_downloads=True, bypass_csp=True
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
