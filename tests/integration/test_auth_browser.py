"""Login, scope, logout and a display token in headless Chromium under the real CSP, no errors."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page
from waitress.server import create_server

from ioc.app.services.state import ConnectionInfo
from ioc.core.citypack import load_pack
from layouts.i18n import t
from tests.support import auth_world as aw
from tests.support.auth_world import PASSWORDS, WARD_A, WARD_B, World
from tests.support.browser import ARTIFACTS

PACK = load_pack("halong")
# The wrong-password step answers 401 on purpose; Chromium logs that status as an error.
EXPECTED = "Failed to load resource: the server responded with a status of 401"


@pytest.fixture(scope="module")
def served(services: ConnectionInfo, pg_admin_url: str) -> Iterator[tuple[World, str]]:
    assert services.reader_url
    with aw.world(pg_admin_url, services.reader_url, hours=30) as w:
        server = create_server(w.app.server, host="127.0.0.1", port=0, threads=4)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            yield w, f"http://127.0.0.1:{server.effective_port}"
        finally:
            server.close()


def console(page: Page) -> list[str]:
    seen: list[str] = []
    page.on(
        "console",
        lambda m: (
            seen.append(f"{m.type}: {m.text}")
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: seen.append(f"pageerror: {e}"))
    return seen


def test_login_scope_and_logout_under_the_real_csp(
    served: tuple[World, str], browser: Browser
) -> None:
    _w, url = served
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    seen = console(page)
    page.goto(url + "/")
    assert page.url == url + "/login", "anonymous visitors land on the login page"
    page.wait_for_selector(f"text={t('login.user', 'vi')}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login.png"))
    page.click(".login-lang")
    page.wait_for_selector(f"text={t('login.user', 'en')}")
    page.fill("input[name=username]", "mgr-a")
    page.fill("input[name=password]", "not-the-password")
    page.click(".login-submit")
    page.wait_for_selector(f".login-error:has-text('{t('login.failed', 'en')}')")
    page.fill("input[name=username]", "mgr-a")
    page.fill("input[name=password]", PASSWORDS["mgr-a"])
    page.click(".login-submit")
    page.wait_for_selector("path.ward", timeout=20_000)
    page.wait_for_selector("#wall-banner.is-up", timeout=20_000)
    assert page.url == url + "/"
    assert page.inner_text(".user-name") == "mgr-a"
    session = [c for c in context.cookies() if c["name"] == "ioc_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Lax"
    assert "ioc_session" not in page.evaluate("document.cookie")  # not readable by scripts
    page.goto(f"{url}/ward/{WARD_A}")
    page.wait_for_selector(".kpi-table", timeout=20_000)
    page.wait_for_selector(".js-plotly-plot", timeout=20_000)
    page.goto(f"{url}/ward/{WARD_B}")
    page.wait_for_selector(".denied", timeout=20_000)
    assert PACK.ward(WARD_B).name not in page.inner_text("main")
    page.click(".logout")
    page.wait_for_url(url + "/login", timeout=10_000)
    page.goto(url + "/")
    assert page.url == url + "/login", "logged out: the wall needs a login again"
    context.close()
    unexpected = [m for m in seen if EXPECTED not in m]
    assert not unexpected, unexpected


def test_display_token_url_becomes_a_cookie_for_the_wall(
    served: tuple[World, str], browser: Browser
) -> None:
    w, url = served
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    seen = console(page)
    page.goto(f"{url}/display?token={w.display_secret}")
    assert page.url == url + "/", "the token leaves the address bar"
    page.wait_for_selector("path.ward", timeout=20_000)
    page.wait_for_selector("#wall-banner.is-up", timeout=20_000)
    assert page.inner_text(".user-name") == "lobby"
    assert page.locator(".logout").count() == 0
    page.screenshot(path=str(ARTIFACTS / "wall-display-token.png"))
    refused = page.goto(f"{url}/ward/{WARD_A}")
    assert refused is not None and refused.status == 403
    assert "ward-kpis" not in page.content()
    context.close()
    unexpected = [m for m in seen if "status of 403" not in m]
    assert not unexpected, unexpected
