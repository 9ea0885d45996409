"""SQL-injection and bad-input sweep: every callback input and state of the dashboard (built
from the app's callback map), its URL parameters and login form, and the `ioc users` CLI's
arguments and password, each fed a list of hostile values. Each answer must be a clean refusal
or a correct result - never a server error, a trace or a changed table."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from psycopg import sql

from ioc.app.cli import main as ioc_main
from ioc.app.services.state import ConnectionInfo
from ioc.core.auth.passwords import PasswordPolicyError, check_policy, verify_password
from ioc.core.auth.principals import NAME_RE
from ioc.core.auth.ratelimit import LoginLimiter
from tests.support import auth_world as aw
from tests.support.auth_world import PASSWORDS, WARD_A, World

HOSTILE_TEXT: list[str] = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    f"{WARD_A}' --",
    f"{WARD_A}\x00",
    "1; SELECT pg_sleep(5)",
    "%",
    "_",
    "\\",
    '"',
    "`",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "${jndi:ldap://x/a}",
    "../../etc/passwd",
    "%00",
    "\r\nSet-Cookie: a=b",
    "\x1b[31mred",
    "\u202egnp.exe",
    "😀" * 50,
    "A" * 100_000,
    "1e308",
    "null",
    "",
    " ",
    "-1",
]
HOSTILE_VALUES: list[Any] = [
    *HOSTILE_TEXT,
    None,
    0,
    -1,
    10**30,
    1e308,
    True,
    [],
    {},
    [1, 2],
    {"$gt": ""},
    [[[[["deep"]]]]],
    {"kpi": {"$ne": 1}, "paused_at": "x"},
]
OK_CALLBACK = {200, 204, 400, 403, 413}  # 413: over the body size limit
OK_PAGE = {200, 302, 303, 400, 401, 403, 404, 405, 429}
STEADY_TABLES_EXCLUDED = {"audit_log", "sessions", "alert_acks", "users", "schema_migrations"}


@pytest.fixture(scope="module")
def w(services: ConnectionInfo, pg_admin_url: str) -> Iterator[World]:
    assert services.reader_url
    with aw.world(pg_admin_url, services.reader_url, hours=6) as world:
        # The limiter would answer 429 to most of the sweep; here every input must be handled.
        world.app.server.extensions["ioc_gate"].limiter = LoginLimiter(10**9, 10**9)
        yield world


def fingerprints(w: World) -> dict[str, str]:
    """md5 of every row of every table of the schema, per table."""
    out = {}
    with w.admin() as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (w.schema,)
            ).fetchall()
        ]
        for table in sorted(tables):
            row = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                    " FROM {} t"
                ).format(sql.Identifier(table))
            ).fetchone()
            out[table] = f"{row[0]}:{row[1]}" if row else ""
    return out


def clean(status: int, body: str, allowed: set[int], what: str) -> None:
    assert status in allowed, (what, status, body[:200])
    assert status != 500 and "Traceback" not in body and "psycopg" not in body, what
    assert "<script>alert(1)</script>" not in body, f"{what}: reflected unescaped"


def test_every_input_refuses_hostile_values_cleanly(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprints(w)
    acks_before = _acks(w)
    admin = w.logged_in("root")
    csrf = (admin.get("/"), admin.csrf())[1]
    tried = 0
    # Callback inputs and states, as an attacker would edit the request body.
    for key in aw.server_callbacks(w.app):
        spec = w.app.callback_map[key]
        slots = [(_slot(i), str(i["property"])) for i in [*spec["inputs"], *spec.get("state", [])]]
        for slot in slots:
            for value in HOSTILE_VALUES:
                given = [value] if slot == ("ack", "n_clicks") else value
                body = aw.callback_body(w.app, key, {slot: given})
                r = admin.callback(body, csrf=csrf)
                clean(r.status_code, r.get_data(as_text=True), OK_CALLBACK, f"{key} {slot}")
                tried += 1
    # Malformed bodies.
    for body in [{}, [], "x", 1, {"output": "' OR 1=1"}, {"output": "url.pathname"}]:
        r = admin.callback(body, csrf=csrf)
        clean(r.status_code, r.get_data(as_text=True), {400}, f"body {body!r}")
        tried += 1
    # URL parameters and paths.
    anon = w.client("10.7.7.7")
    for value in HOSTILE_TEXT:
        q = quote(value[:5000], safe="")
        for client, path in (
            (anon, f"/login?next={q}&lang={q}"),
            (anon, f"/display?token={q}"),
            (anon, f"/?next={q}"),
            (admin, f"/ward/{q}"),
            (admin, f"/{q}"),
        ):
            r = client.get(path)
            clean(r.status_code, r.get_data(as_text=True), OK_PAGE, path[:60])
            tried += 1
    # The login form's fields.
    for value in HOSTILE_TEXT:
        for field in ("username", "password", "next", "csrf"):
            form = {"username": "op", "password": "wrong-password-123", "next": "/"}
            r = _login(w, form | {field: value}, keep_csrf=field != "csrf")
            clean(r.status_code, r.get_data(as_text=True), {303, 400, 401}, f"login {field}")
            if field == "next" and r.status_code == 303:
                pytest.fail("a wrong password must not log in")
            tried += 1
    after = fingerprints(w)
    steady = {t for t in before if t not in STEADY_TABLES_EXCLUDED}
    assert {t: after[t] for t in steady} == {t: before[t] for t in steady}
    assert before["users"] == after["users"]
    # The only acknowledgements written are the legitimate default key, by the admin.
    assert {(k, by) for k, by in _acks(w)[len(acks_before) :]} <= {(f"aqi:{WARD_A}", "root")}
    with capsys.disabled():
        print(f"\ninjection sweep (dashboard): {tried} inputs tried")
    assert tried > 900


def _slot(item: dict[str, Any]) -> str:
    ident = str(item["id"])
    return str(json.loads(ident).get("type")) if ident.startswith("{") else ident


def _acks(w: World) -> list[tuple[str, str]]:
    with w.admin() as conn:
        rows = conn.execute(
            "SELECT alert_key, acked_by FROM alert_acks ORDER BY acked_at"
        ).fetchall()
    return [(str(k), str(b)) for k, b in rows]


def _login(w: World, form: dict[str, str], keep_csrf: bool) -> Any:
    c = w.client("10.8.8.8")
    page = c.get("/login").get_data(as_text=True)
    token = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    data = {"csrf": token, **form} if keep_csrf else {"csrf": token} | form
    return c.post_form("/login", data)


def ioc_run(w: World, argv: list[str], stdin: str = "") -> int:
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("IOC_DATABASE_URL", w.admin_url)
        mp.setenv("IOC_DB_SCHEMA", w.schema)
        mp.setattr("sys.stdin", io.StringIO(stdin))
        try:
            return ioc_main(argv)
        except SystemExit as exc:  # argparse's one-line refusal
            return int(exc.code or 0)
    finally:
        mp.undo()


def test_cli_refuses_hostile_arguments_and_stores_hostile_passwords_exactly(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprints(w)
    good = "good-password-1234\n"
    assert (
        ioc_run(w, ["users", "add", "sweep", "--role", "operator", "--password-stdin"], good) == 0
    )
    names = [str(v) if not isinstance(v, str) else v for v in HOSTILE_VALUES]
    tried = 0
    valid_names: list[str] = []
    for v in names:
        named = NAME_RE.match(v) is not None  # some hostile values are fine names: "null", "0"
        commands: list[tuple[list[str], str, bool]] = [
            (["users", "add", v, "--role", "operator", "--password-stdin"], good, named),
            (["users", "add", "okname", "--role", v, "--password-stdin"], good, False),
            (
                ["users", "add", "mgrx", "--role", "manager", "--wards", v, "--password-stdin"],
                good,
                False,
            ),
            (["users", "set-password", v, "--password-stdin"], good, named),
            (["users", "remove", v], "", named),
            (["users", "display-token", "create", v], "", named),
            (["users", "display-token", "create", "tk", "--days", v], "", False),
            (["users", "display-token", "create", "tk2", "--url", v], "", v == ""),  # default
            (["users", "display-token", "revoke", v], "", named),
            (["users", "audit", "-n", v], "", False),
        ]
        for argv, stdin, succeeds in commands:
            code = ioc_run(w, argv, stdin)
            out = capsys.readouterr()
            assert (code == 0) if succeeds else code in (1, 2), (argv[:4], code)
            assert "Traceback" not in out.err, argv[:3]
            assert len(out.err.strip().splitlines()) == (0 if succeeds else 1), argv[:3]
            tried += 1
        valid_names += [v] if named else []
        # A hostile password is either refused by the policy or stored so that exactly it works.
        code = ioc_run(w, ["users", "set-password", "sweep", "--password-stdin"], v + "\n")
        capsys.readouterr()
        try:
            check_policy(v)
            acceptable = True
        except PasswordPolicyError:
            acceptable = False
        assert code == (0 if acceptable else 1), repr(v[:30])
        if acceptable:
            with w.admin() as conn:
                row = conn.execute(
                    "SELECT password_hash FROM users WHERE username = 'sweep'"
                ).fetchone()
            assert (
                row
                and verify_password(str(row[0]), v)
                and not verify_password(str(row[0]), v + "x")
            )
        tried += 1
    after = fingerprints(w)
    for table in ("sessions", "dossiers", "payment_stats_hourly", "alert_acks"):
        assert after[table] == before[table], table
    with w.admin() as conn:
        users = sorted(str(r[0]) for r in conn.execute("SELECT username FROM users").fetchall())
        tokens = dict(
            conn.execute("SELECT name, revoked_at IS NOT NULL FROM display_tokens").fetchall()
        )
    assert users == sorted([*PASSWORDS, "sweep"])
    assert tokens == {"lobby": False, "tk2": False} | dict.fromkeys(valid_names, True)
    assert valid_names, "some hostile values are valid names; they must work exactly"
    with capsys.disabled():
        print(f"\ninjection sweep (CLI): {tried} inputs tried")
