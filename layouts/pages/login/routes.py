"""Routes of the doors: login, logout, a wall display's token exchange (plain Flask, strict CSP)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Final

from flask import Flask, Response, g, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from ioc.core.auth import sessions, tokens, users
from ioc.core.auth.passwords import verify_password
from layouts.data import DATABASE_GONE
from layouts.i18n import Lang, lang_of, t
from layouts.pages.login.view import page, refused_display
from layouts.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Gate,
    client_ip,
    gate_of,
    safe_next,
    wants_secure,
)

LOGIN_CSRF_COOKIE: Final = "ioc_login_csrf"
DISPLAY_KEY: Final = "display-token"  # the limiter's user key for token guesses


def _lang() -> Lang:
    return lang_of(request.args.get("lang") or request.form.get("lang"))


def _form(city: str, lang: Lang, next_path: str, error: str = "", status: int = 200) -> Response:
    # Reused while valid: a second GET (another tab, the favicon's redirect) must not void the
    # form already on screen.
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    token = current if re.fullmatch(r"[A-Za-z0-9_-]{43}", current) else secrets.token_urlsafe(32)
    response = page(city, lang, token, next_path, error, status)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        secure=wants_secure(gate_of(_server())),
        httponly=True,
        samesite="Strict",
    )
    return response


def _server() -> Flask:
    from flask import current_app

    return current_app


def _session_cookie(response: BaseResponse, gate: Gate, secret: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        secure=wants_secure(gate),
        httponly=True,
        samesite="Lax",
    )


def login_get(city: str) -> ResponseReturnValue:
    return _form(city, _lang(), safe_next(request.args.get("next")))


def login_post(city: str) -> ResponseReturnValue:
    gate = gate_of(_server())
    lang = _lang()
    next_path = safe_next(request.form.get("next"))
    sent = request.form.get("csrf", "")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        return _form(city, lang, next_path, t("login.expired", lang), 400)
    username = request.form.get("username", "").strip().lower()[:200]
    password = request.form.get("password", "")
    ip = client_ip()
    wait = gate.limiter.retry_after(ip, username)
    if wait > 0:
        gate.audit("login", "limited", detail={"retry_after_s": round(wait)})
        seconds = int(wait) + 1
        response = _form(city, lang, next_path, t("login.limited", lang, seconds=seconds), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    try:
        with gate.connection() as conn:
            record = users.for_login(conn, username)
            ok = verify_password(record.password_hash if record else None, password)
            if record is None or not ok:
                gate.limiter.failed(ip, username)
                # A name that is not a user may be a password typed in the wrong box: not kept.
                actor = record.principal.name if record else ""
                known = {"known_user": record is not None}
                gate.audit("login", "failed", actor=actor, detail=known)
                return _form(city, lang, next_path, t("login.failed", lang), 401)
            hours = gate.options.session_hours
            sessions.purge_expired(conn, gate.clock())  # logins are rare: tidy up here
            until = gate.clock() + timedelta(hours=hours)
            secret, _csrf = sessions.create_session(
                conn, expires_at=until, ip=ip, user_id=record.user_id
            )
    except DATABASE_GONE:
        return _form(city, lang, next_path, t("login.unavailable", lang), 503)
    gate.limiter.succeeded(ip, username)
    gate.audit("login", "ok", actor=record.principal.name, detail={"role": record.principal.role})
    done = redirect(next_path, code=303)
    _session_cookie(done, gate, secret, int(hours * 3600))
    done.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return done


def logout_post() -> ResponseReturnValue:
    gate = gate_of(_server())
    secret = g.get("ioc_secret")
    who = g.get("ioc_principal")
    if isinstance(secret, str):
        try:
            with gate.connection() as conn:
                sessions.end_session(conn, secret)
        except DATABASE_GONE:
            pass  # the cookie is cleared below; the row expires by itself
        gate.forget(secret)
        gate.audit("logout", "ok", actor=getattr(who, "name", ""))
    out = redirect("/login", code=303)
    out.delete_cookie(SESSION_COOKIE)
    out.delete_cookie(CSRF_COOKIE)
    return out


def display_get(city: str) -> ResponseReturnValue:
    gate = gate_of(_server())
    lang = _lang()
    ip = client_ip()
    invalid = refused_display(city, lang)
    wait = gate.limiter.retry_after(ip, DISPLAY_KEY)
    if wait > 0:
        gate.audit("display", "limited")
        invalid.status_code = 429
        invalid.headers["Retry-After"] = str(int(wait) + 1)
        return invalid
    try:
        with gate.connection() as conn:
            token = tokens.find_token(conn, request.args.get("token"), gate.clock())
            if token is None:
                gate.limiter.failed(ip, DISPLAY_KEY)
                gate.audit("display", "refused")
                return invalid
            secret, _csrf = sessions.create_session(
                conn, expires_at=token.expires_at, ip=ip, token_id=token.token_id
            )
    except DATABASE_GONE:
        return Response(t("login.unavailable", lang), status=503, mimetype="text/plain")
    gate.audit("display", "ok", actor=token.name)
    # The token leaves the address bar at once; the screen keeps only the cookie.
    exchanged = redirect("/", code=303)
    max_age = int((token.expires_at - gate.clock()).total_seconds())
    _session_cookie(exchanged, gate, secret, max(60, max_age))
    return exchanged


def register(server: Flask, city: str) -> None:
    """The routes /login (GET, POST), /logout (POST) and /display (GET)."""
    server.add_url_rule("/login", "ioc_login", lambda: login_get(city), methods=["GET"])
    server.add_url_rule("/login", "ioc_login_post", lambda: login_post(city), methods=["POST"])
    server.add_url_rule("/logout", "ioc_logout", logout_post, methods=["POST"])
    server.add_url_rule("/display", "ioc_display", lambda: display_get(city), methods=["GET"])
