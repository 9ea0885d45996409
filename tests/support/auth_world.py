"""A dashboard behind its login gate over a filled schema, with one user per role, a ward-scoped
manager and a display token, plus a client that logs in and sends callback requests built from
the app's own callback map (as the browser would, or as an attacker editing them would)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from dash import Dash
from flask.testing import FlaskClient
from psycopg import sql
from werkzeug.test import TestResponse

from ioc.app.commands.dashboard import dashboard_app
from ioc.app.settings import Settings
from ioc.core.auth import tokens, users
from ioc.core.auth.passwords import hash_password
from ioc.core.contracts import VN_TZ, PaymentEvent, encode_event
from ioc.core.db.migrate import migrate
from layouts.kpis import SPECS
from layouts.security import AuthOptions
from streams.ingest.writers.base import Accepted
from streams.ingest.writers.registry import WRITERS
from streams.transport.source import SourceRecord
from tests.support import dashboard_fill as fill

WARD_A = "06673"  # the scoped manager's ward
WARD_B = "06697"  # a ward it must never see
PASSWORDS = {
    "op": "operator-pass-1234",
    "mgr-a": "manager-a-pass-1234",
    "boss": "city-manager-pass-1234",
    "root": "admin-pass-12345678",
}
ROLES = {"op": "operator", "mgr-a": "manager", "boss": "manager", "root": "admin"}


def stringify_id(raw: Any) -> str:
    """Dash's text form of a component id (dict ids as sorted compact JSON)."""
    if isinstance(raw, dict):
        return json.dumps(raw, sort_keys=True, separators=(",", ":"))
    return str(raw)


def outputs_of(key: str) -> list[tuple[Any, str]]:
    """(id, property) of each output named by a callback-map key."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    out = []
    for part in parts:
        ident, prop = part.rsplit(".", 1)
        out.append((json.loads(ident) if ident.startswith("{") else ident, prop))
    return out


TILE_KPIS = [s.key for s in SPECS]


def ack_button(key: str) -> dict[str, str]:
    """The id of the alert `key`'s acknowledge button ("aqi:06649": kind aqi, subject 06649)."""
    kind, _, subject = key.partition(":")
    return {"kind": kind, "subject": subject, "type": "ack"}


def expand(ident: Any, prop: str, value: Any) -> Any:
    """One input/output entry; wildcard (ALL) ids become a list of concrete ones."""
    if isinstance(ident, dict) and any(v == ["ALL"] for v in ident.values()):
        kind = ident.get("type")
        if kind == "ack":
            keys = value if isinstance(value, list) else [f"aqi:{WARD_A}"]
            return [
                {"id": ack_button(k), "property": prop, "value": 1} if isinstance(k, str) else k
                for k in keys
            ]
        return [{"id": {**ident, "kpi": k}, "property": prop, "value": value} for k in TILE_KPIS]
    return {"id": ident, "property": prop, "value": value}


# A normal request's values for every (id, property) the callbacks read.
DEFAULTS: dict[tuple[str, str], Any] = {
    ("url", "pathname"): "/",
    ("lang", "data"): "vi",
    ("lang-button", "n_clicks"): 1,
    ("wall-refresh", "n_intervals"): 1,
    ("wall-selected", "data"): {"kpi": "transactions", "paused_at": None},
    ("wall-acked", "data"): 0,
    ("wall-rotate", "n_intervals"): 1,
    ("wall-pause", "n_clicks"): 0,
    ("wall-geojson", "clickData"): {"properties": {"ward_code": WARD_A}},
    ("ward-period", "value"): "24h",
    ("ward-refresh", "n_intervals"): 1,
    ("ward-code", "data"): WARD_A,
    ("ward-export", "n_clicks"): 1,
    ("ack", "n_clicks"): [f"aqi:{WARD_A}"],
    ("tile", "n_clicks"): 0,
}


def slot(ident: Any) -> str:
    return str(ident.get("type")) if isinstance(ident, dict) else str(ident)


def callback_body(app: Dash, key: str, values: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """The JSON body the browser would post for callback `key`, with `values` replacing the
    defaults (keyed by (component id or wildcard type, property))."""
    spec = app.callback_map[key]
    given = {**DEFAULTS, **(values or {})}

    def entry(item: Mapping[str, Any]) -> Any:
        ident_text, prop = str(item["id"]), str(item["property"])
        ident = json.loads(ident_text) if ident_text.startswith("{") else ident_text
        return expand(ident, prop, given.get((slot(ident), prop)))

    inputs = [entry(i) for i in spec["inputs"]]
    state = [entry(s) for s in spec.get("state", [])]
    outputs = [expand(i, p, None) for i, p in outputs_of(key)]
    for o in outputs:
        for item in o if isinstance(o, list) else [o]:
            item.pop("value", None)
    first = inputs[0]
    first = first[0] if isinstance(first, list) and first else first
    ok = isinstance(first, dict) and "id" in first and "property" in first
    changed = [f"{stringify_id(first['id'])}.{first['property']}"] if ok else []
    return {
        "output": key,
        "outputs": outputs if len(outputs) > 1 or key.startswith("..") else outputs[0],
        "inputs": inputs,
        "state": state,
        "changedPropIds": changed,
    }


def server_callbacks(app: Dash) -> list[str]:
    """Every callback the server runs (client-side ones have no Python function)."""
    return sorted(k for k, v in app.callback_map.items() if "callback" in v)


def key_with(app: Dash, output: str) -> str:
    """The callback-map key whose outputs include `output` ("id.property")."""
    found = [k for k in app.callback_map if output in k]
    assert len(found) == 1, (output, found)
    return found[0]


class Client:
    """A browser-like client: cookies, CSRF header from the _csrf_token cookie, login form."""

    def __init__(self, app: Dash, ip: str = "127.0.0.1", base_url: str = "http://localhost"):
        self.app = app
        self.http: FlaskClient = app.server.test_client()
        self.environ = {"REMOTE_ADDR": ip}
        self.base_url = base_url
        self.headers: dict[str, str] = {}  # sent with every request, e.g. a proxy's X-Forwarded-*

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.http.get(
            path, environ_base=self.environ, base_url=self.base_url, headers=self.headers, **kw
        )

    def post_form(self, path: str, data: Mapping[str, str], **kw: Any) -> TestResponse:
        return self.http.post(
            path,
            data=dict(data),
            environ_base=self.environ,
            base_url=self.base_url,
            headers=self.headers,
            **kw,
        )

    def login(self, name: str, password: str, next_path: str = "/") -> TestResponse:
        form = self.get("/login").get_data(as_text=True)
        match = re.search(r'name="csrf" value="([^"]+)"', form)
        assert match, "the login form carries a CSRF token"
        return self.post_form(
            "/login",
            {"csrf": match.group(1), "username": name, "password": password, "next": next_path},
        )

    def csrf(self) -> str:
        cookie = self.http.get_cookie("_csrf_token")
        return cookie.value if cookie is not None else ""

    def callback(self, body: Any, csrf: str | None = None) -> TestResponse:
        if csrf is None:
            self.get("/")  # the page load that sets the CSRF cookie, as in a browser
            csrf = self.csrf()
        return self.http.post(
            "/_dash-update-component",
            json=body,
            headers={**self.headers, "X-CSRFToken": csrf},
            environ_base=self.environ,
            base_url=self.base_url,
        )


@dataclass
class World:
    schema: str
    admin_url: str
    reader_url: str
    app: Dash
    display_secret: str
    now: datetime
    written: dict[str, int] = field(default_factory=dict)

    def admin(self) -> psycopg.Connection[Any]:
        return fill.connect(self.admin_url, self.schema)

    def client(self, ip: str = "127.0.0.1") -> Client:
        return Client(self.app, ip)

    def logged_in(self, name: str, ip: str = "127.0.0.1") -> Client:
        c = self.client(ip)
        r = c.login(name, PASSWORDS[name])
        assert r.status_code == 303, (name, r.status_code)
        return c


def add_users(conn: psycopg.Connection[Any]) -> None:
    for name, password in PASSWORDS.items():
        wards = [WARD_A] if name == "mgr-a" else None
        users.add_user(conn, name, hash_password(password), ROLES[name], wards)


def add_today_payments(conn: psycopg.Connection[Any], now: datetime) -> int:
    """A few payments in wards A and B since local midnight, so that 'today' is never empty
    (right after midnight the simulated night alone may have none in a given ward)."""
    local = now.astimezone(VN_TZ)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    at = max(now - timedelta(seconds=20), midnight + timedelta(seconds=1))
    batch = []
    for i, ward in enumerate((WARD_A, WARD_A, WARD_B, WARD_B, WARD_B)):
        ev = PaymentEvent(
            event_id=f"today-{i}", event_time=at, payment_id=f"today-{i}", merchant_id=f"M-{ward}",
            ward_code=ward, merchant_type="shop", channel="vietqr", amount_vnd=50_000 + i,
            status="succeeded",
        )  # fmt: skip
        raw = encode_event(ev)
        batch.append(Accepted(SourceRecord("ioc.payments.v1", 0, i, None, raw, 0), ev))
    with conn.transaction():
        return WRITERS["payments"].write(conn, batch).inserted


@contextmanager
def world(
    admin_url: str, reader_url: str, options: AuthOptions | None = None, hours: int = 30
) -> Iterator[World]:
    """A migrated, filled schema with users and a display token, and the app over it."""
    schema = f"t_auth_{uuid.uuid4().hex[:8]}"
    migrate(admin_url, schema=schema)
    now = datetime.now(UTC)
    try:
        with fill.connect(admin_url, schema) as conn:
            written = fill.write(
                conn,
                fill.stream(now - timedelta(minutes=1), timedelta(hours=hours), 42, 0.2, 3),
                now,
            )
            fill.touch_health(conn, ["dossiers", "payments", "feedback", "air_quality"], now)
            written["payments"] = written.get("payments", 0) + add_today_payments(conn, now)
            add_users(conn)
            secret, _id = tokens.create_token(conn, "lobby", timedelta(days=30), now)
        settings = Settings(database_url=reader_url, db_schema=schema)
        app = dashboard_app(settings, auth=options or AuthOptions(session_cache_s=0.0))
        yield World(schema, admin_url, reader_url, app, secret, now, written)
        app.server.config["IOC_DATA"].close()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
