"""Access control, table sessions: server-side sessions behind an HttpOnly cookie. The cookie
holds a random secret, the table its SHA-256; each session carries its own CSRF token."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg

from ioc.core.auth.principals import Principal

SECRET_RE: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")

INSERT: Final = """
INSERT INTO sessions (session_hash, user_id, token_id, csrf_token, expires_at, ip)
VALUES (%(hash)s, %(user)s, %(token)s, %(csrf)s, %(expires)s, %(ip)s)
"""
# A session counts only while its user is enabled or its display token is live.
LOOKUP: Final = """
SELECT s.csrf_token, s.expires_at, u.username, u.role, u.wards, d.name
FROM sessions s
LEFT JOIN users u ON u.user_id = s.user_id AND NOT u.disabled
LEFT JOIN display_tokens d
       ON d.token_id = s.token_id AND d.revoked_at IS NULL AND d.expires_at > %(now)s
WHERE s.session_hash = %(hash)s AND s.expires_at > %(now)s
"""
DELETE: Final = "DELETE FROM sessions WHERE session_hash = %(hash)s"
PURGE: Final = "DELETE FROM sessions WHERE expires_at <= %(now)s"


@dataclass(frozen=True)
class Session:
    """A live session: who, its CSRF token and until when."""

    principal: Principal
    csrf_token: str
    expires_at: datetime


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def valid_secret(raw: object) -> str | None:
    """The cookie value when it has the shape of one of ours (anything else is anonymous)."""
    return raw if isinstance(raw, str) and SECRET_RE.match(raw) else None


def create_session(
    conn: psycopg.Connection[Any],
    *,
    expires_at: datetime,
    ip: str,
    user_id: int | None = None,
    token_id: int | None = None,
) -> tuple[str, str]:
    """(cookie secret, CSRF token) of a new session for a user or a display token."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(
        INSERT,
        {
            "hash": digest(secret),
            "user": user_id,
            "token": token_id,
            "csrf": csrf,
            "expires": expires_at,
            "ip": ip[:64],
        },
    )
    return secret, csrf


def lookup(conn: psycopg.Connection[Any], secret: str, now: datetime) -> Session | None:
    row = conn.execute(LOOKUP, {"hash": digest(secret), "now": now}).fetchone()
    if row is None:
        return None
    csrf, expires, username, role, wards, display = row
    if username is not None:
        scope = frozenset(wards) if wards is not None else None
        return Session(Principal(str(username), str(role), "user", scope), str(csrf), expires)
    if display is not None:
        return Session(Principal(str(display), "display", "display", None), str(csrf), expires)
    return None


def end_session(conn: psycopg.Connection[Any], secret: str) -> None:
    conn.execute(DELETE, {"hash": digest(secret)})


def purge_expired(conn: psycopg.Connection[Any], now: datetime) -> int:
    return conn.execute(PURGE, {"now": now}).rowcount


def lifetime(hours: float) -> timedelta:
    return timedelta(hours=hours)
