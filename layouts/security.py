"""Callback step's gate around every request: who asks, may they, CSRF, shapes, safe errors."""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

import psycopg
from flask import Flask, Response, g, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from ioc.core.auth import audit
from ioc.core.auth.audit import Outcome
from ioc.core.auth.principals import OPEN, Permission, Principal
from ioc.core.auth.ratelimit import LoginLimiter
from ioc.core.auth.sessions import Session, lookup, valid_secret
from layouts.data import DATABASE_GONE, Pool

log = logging.getLogger("ioc.dashboard.security")

SESSION_COOKIE: Final = "ioc_session"
CSRF_COOKIE: Final = "_csrf_token"  # the cookie Dash's renderer copies into its X-CSRFToken header
CSRF_HEADER: Final = "X-CSRFToken"
CALLBACK_PATH: Final = "/_dash-update-component"
PUBLIC_PATHS: Final = frozenset({"/login", "/logout", "/display", "/_favicon.ico"})
PUBLIC_PREFIXES: Final = ("/assets/",)
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY: Final = 512 * 1024
MAX_ITEMS: Final = 200  # wildcard inputs (tiles, alert buttons) stay far below this
# After the database stops answering, a session seen recently stays valid this long, so a
# wall display keeps showing "data unavailable since ..." instead of a login page.
OUTAGE_GRACE_S: Final = 600.0


@dataclass(frozen=True)
class AuthOptions:
    """enabled False only for the one-command demo; cookie_secure None = when served over https."""

    enabled: bool = True
    session_hours: float = 12.0
    cookie_secure: bool | None = None
    session_cache_s: float = 5.0


class Gate:
    """Per-app access state: sessions (cached briefly), the login limiter, each callback's
    required permission (by Dash output key) and the audit log writer."""

    def __init__(
        self,
        pool: Pool,
        options: AuthOptions,
        clock: Callable[[], datetime],
        limiter: LoginLimiter | None = None,
    ) -> None:
        self.pool = pool
        self.options = options
        self.clock = clock
        self.limiter = limiter or LoginLimiter()
        self.permissions: Mapping[str, Permission] = {}
        self.callback_map: Mapping[str, Any] = {}
        self.csp = ""
        self._cache: dict[str, tuple[float, Session | None]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            try:
                yield conn
            except BaseException:
                conn.close()  # in any state after a failure: closed, the pool drops it
                raise

    def session(self, secret: str) -> Session | None:
        """The live session behind a cookie secret; revocations show within session_cache_s."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(secret)
        if cached is not None and now - cached[0] < self.options.session_cache_s:
            return cached[1]
        try:
            with self.connection() as conn:
                found = lookup(conn, secret, self.clock())
        except DATABASE_GONE:
            if cached is not None and cached[1] is not None and now - cached[0] < OUTAGE_GRACE_S:
                return cached[1]
            raise
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[secret] = (now, found)
        return found

    def forget(self, secret: str) -> None:
        with self._lock:
            self._cache.pop(secret, None)

    def audit(
        self,
        action: str,
        outcome: Outcome,
        actor: str = "",
        detail: Mapping[str, object] | None = None,
    ) -> None:
        """Best effort: a failed audit write is logged, never shown to the caller."""
        try:
            with self.connection() as conn:
                audit.record(conn, action, outcome, actor=actor, ip=client_ip(), detail=detail)
        except DATABASE_GONE as exc:
            log.warning("audit %s %s not written: %s", action, outcome, type(exc).__name__)


def client_ip() -> str:
    return str(request.remote_addr or "")[:64]


def gate_of(server: Flask) -> Gate:
    gate: Gate = server.extensions["ioc_gate"]
    return gate


def principal() -> Principal:
    """Who asked for the current request (set by the gate); Forbidden if nobody did."""
    who = g.get("ioc_principal")
    if not isinstance(who, Principal):
        raise Forbidden()
    return who


def csrf_token() -> str:
    """The current session's CSRF token ('' without a session)."""
    session = g.get("ioc_session")
    return session.csrf_token if isinstance(session, Session) else ""


def require(permission: Permission) -> Principal:
    who = principal()
    if not who.can(permission):
        raise Forbidden()
    return who


def audit_event(
    server: Flask, action: str, outcome: Outcome, detail: Mapping[str, object] | None = None
) -> None:
    who = g.get("ioc_principal")
    gate_of(server).audit(action, outcome, who.name if isinstance(who, Principal) else "", detail)


def safe_next(raw: object) -> str:
    """Where to go after login: a local path of ours, else '/' (no open redirects)."""
    if isinstance(raw, str) and re.fullmatch(r"/(ward/[0-9]{5})?", raw):
        return raw
    return "/"


def wants_secure(gate: Gate) -> bool:
    if gate.options.cookie_secure is not None:
        return gate.options.cookie_secure
    return bool(request.is_secure)


# ---- request shape -------------------------------------------------------------------------

_ID_VALUE = str | int | float | bool | list[Any]


def _is_id(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= 200
    if isinstance(value, dict):
        return len(value) <= 10 and all(
            isinstance(k, str) and isinstance(v, _ID_VALUE) for k, v in value.items()
        )
    return False


def _is_entry(item: object) -> bool:
    return (
        isinstance(item, dict)
        and _is_id(item.get("id"))
        and isinstance(item.get("property"), str)
        and len(item["property"]) <= 100
    )


def _is_slot(item: object) -> bool:
    """One input, state or output: an entry, or a wildcard's flat list of entries."""
    if isinstance(item, list):
        return len(item) <= MAX_ITEMS and all(_is_entry(i) for i in item)
    return _is_entry(item)


def callback_output(body: object, callback_map: Mapping[str, Any]) -> str:
    """The output key of a well-formed request for a server-side callback; BadRequest else."""
    if not isinstance(body, dict):
        raise BadRequest("callback body must be a JSON object")
    output = body.get("output")
    if not isinstance(output, str) or output not in callback_map:
        raise BadRequest("unknown callback")
    spec = callback_map[output]
    if "callback" not in spec:
        raise BadRequest("unknown callback")  # client-side only
    inputs, state = body.get("inputs"), body.get("state", [])
    if not isinstance(inputs, list) or len(inputs) != len(spec.get("inputs", [])):
        raise BadRequest("callback inputs do not match")
    if not isinstance(state, list) or len(state) != len(spec.get("state", [])):
        raise BadRequest("callback state does not match")
    if not all(_is_slot(i) for i in [*inputs, *state]):
        raise BadRequest("malformed callback input")
    outputs = body.get("outputs")
    listed = outputs if isinstance(outputs, list) and not _is_slot(outputs) else [outputs]
    if not (isinstance(outputs, dict | list) and all(_is_slot(o) for o in listed)):
        raise BadRequest("malformed callback outputs")
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        raise BadRequest("malformed changedPropIds")
    return output


# ---- hooks ---------------------------------------------------------------------------------


def _refuse(code: int, message: str) -> ResponseReturnValue:
    if request.path.startswith("/_dash"):
        return jsonify(error=message), code
    return Response(
        f"<!doctype html><title>{code}</title><p>{code}: {message}</p>"
        '<p><a href="/">IOC</a> · <a href="/login">login</a></p>',
        status=code,
        mimetype="text/html",
    )


def _csrf_ok(session: Session) -> bool:
    sent = request.headers.get(CSRF_HEADER) or request.form.get("csrf") or ""
    return hmac.compare_digest(sent.encode(), session.csrf_token.encode())


def _same_origin() -> bool:
    # Browsers send Origin on every cross-site POST; its absence (scripts, old clients) still
    # leaves the CSRF token to check.
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _identify(gate: Gate) -> None:
    g.ioc_principal = None
    g.ioc_session = None
    if not gate.options.enabled:
        g.ioc_principal = OPEN
        return
    secret = valid_secret(request.cookies.get(SESSION_COOKIE))
    if secret is None:
        return
    session = gate.session(secret)
    if session is not None:
        g.ioc_principal, g.ioc_session, g.ioc_secret = session.principal, session, secret


def before(gate: Gate) -> ResponseReturnValue | None:
    """Refuse what the caller may not do; None lets the request through."""
    path = request.path
    if path.startswith(PUBLIC_PREFIXES):
        return None
    try:
        _identify(gate)
    except DATABASE_GONE:
        return _refuse(503, "database unavailable, retrying")
    if request.method not in SAFE_METHODS and not _same_origin():
        return _refuse(403, "cross-site request refused")
    session: Session | None = g.ioc_session
    unsafe = request.method not in SAFE_METHODS
    # /login has its own form token; every other state change needs the session's.
    if unsafe and session is not None and path != "/login" and not _csrf_ok(session):
        return _refuse(403, "missing or wrong CSRF token")
    if path in PUBLIC_PATHS:
        return None
    who: Principal | None = g.ioc_principal
    if who is None:
        if request.method == "GET" and not path.startswith("/_"):
            target = "/login" if safe_next(path) == "/" else f"/login?next={safe_next(path)}"
            return redirect(target, code=302)
        return _refuse(401, "login required")
    if not who.can("view"):
        return _refuse(403, "not permitted")
    if path == CALLBACK_PATH:
        if request.method != "POST":
            return None  # Flask answers 405
        output = callback_output(request.get_json(silent=True), gate.callback_map)
        needed = gate.permissions.get(output)
        if needed is None or not who.can(needed):
            return _refuse(403, "not permitted")
    elif path.startswith("/ward/") and not who.can("ward"):
        return _refuse(403, "not permitted")
    return None


def content_security_policy(script_hashes: list[str], tiles_url: str) -> str:
    """A CSP that Dash, Plotly and Leaflet run under: scripts only from here or the hashed
    inline ones Dash writes; inline styles allowed (Plotly and Leaflet set them)."""
    images = ["'self'", "data:", "blob:"]
    if tiles_url.startswith(("http://", "https://")):
        parts = urlsplit(tiles_url.replace("{s}", "a"))
        host = re.sub(r"^[a-z]\.", "*.", parts.netloc) if "{s}" in tiles_url else parts.netloc
        images.append(f"{parts.scheme}://{host}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(script_hashes),
            "style-src 'self' 'unsafe-inline'",
            "img-src " + " ".join(images),
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def after(gate: Gate, response: Response) -> Response:
    """Security headers on every response; the CSRF cookie kept equal to the session's."""
    h = response.headers
    h["Content-Security-Policy"] = gate.csp
    h["X-Frame-Options"] = "DENY"
    h["X-Content-Type-Options"] = "nosniff"
    h["Referrer-Policy"] = "no-referrer" if request.path == "/display" else "same-origin"
    h["Cross-Origin-Opener-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
    if not request.path.startswith(("/assets/", "/_dash-component-suites/")):
        h["Cache-Control"] = "no-store"
    secure = wants_secure(gate)
    if secure:
        h["Strict-Transport-Security"] = "max-age=31536000"
    session: Session | None = g.get("ioc_session")
    if session is not None and request.cookies.get(CSRF_COOKIE) != session.csrf_token:
        response.set_cookie(
            CSRF_COOKIE, session.csrf_token, secure=secure, httponly=False, samesite="Strict"
        )
    return response


def trust_proxies(server: Flask, hops: int) -> None:
    """Behind `hops` reverse proxies, take the client's address and scheme from the headers
    they add (the last `hops` entries only, so a client cannot choose its own address)."""
    if hops > 0:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def install(server: Flask, gate: Gate) -> None:
    """Register the hooks and error handlers on the app's Flask server."""
    server.extensions["ioc_gate"] = gate
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    server.config["PROPAGATE_EXCEPTIONS"] = False
    server.config["SESSION_COOKIE_HTTPONLY"] = True
    server.before_request(lambda: before(gate))
    server.after_request(lambda response: after(gate, response))

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        code = exc.code or 500
        if code < 400:
            return exc.get_response()  # routing redirects are not errors
        return _refuse(code, (exc.name or "error").lower())

    @server.errorhandler(Exception)
    def any_error(exc: Exception) -> ResponseReturnValue:
        # The trace goes to the server's log, never to the browser.
        log.error("request %s %s failed", request.method, request.path, exc_info=exc)
        return _refuse(500, "internal error")
