"""Access control, table display_tokens: long-lived, revocable tokens for wall screens that
cannot type; the secret is shown once and only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg

from ioc.core.auth.principals import check_name

PREFIX: Final = "iocd_"
TOKEN_RE: Final = re.compile(r"^iocd_[A-Za-z0-9_-]{43}$")

INSERT: Final = """
INSERT INTO display_tokens (name, token_hash, expires_at) VALUES (%(name)s, %(hash)s, %(expires)s)
ON CONFLICT (name) DO NOTHING RETURNING token_id
"""
REVOKE: Final = """
UPDATE display_tokens SET revoked_at = coalesce(revoked_at, %(now)s) WHERE name = %(name)s
RETURNING token_id
"""
END_SESSIONS: Final = "DELETE FROM sessions WHERE token_id = %(id)s"
LIST: Final = """
SELECT token_id, name, created_at, expires_at, revoked_at, last_used_at
FROM display_tokens ORDER BY name
"""
FIND: Final = """
SELECT token_id, name, created_at, expires_at, revoked_at, last_used_at FROM display_tokens
WHERE token_hash = %(hash)s AND revoked_at IS NULL AND expires_at > %(now)s
"""
TOUCH: Final = "UPDATE display_tokens SET last_used_at = %(now)s WHERE token_id = %(id)s"


@dataclass(frozen=True)
class DisplayToken:
    token_id: int
    name: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def create_token(
    conn: psycopg.Connection[Any], name: str, lifetime: timedelta, now: datetime
) -> tuple[str, int]:
    """(secret, token id) of a new token named `name`; ValueError when the name is taken."""
    check_name(name, "token name")
    secret = PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        INSERT, {"name": name, "hash": digest(secret), "expires": now + lifetime}
    ).fetchone()
    if row is None:
        raise ValueError(f"a display token named {name} already exists (revoke it or pick another)")
    return secret, int(row[0])


def revoke_token(conn: psycopg.Connection[Any], name: str, now: datetime) -> bool:
    """Revoke the token and end the sessions it opened; False when there is none."""
    with conn.transaction():
        row = conn.execute(REVOKE, {"name": name, "now": now}).fetchone()
        if row is None:
            return False
        conn.execute(END_SESSIONS, {"id": row[0]})
    return True


def list_tokens(conn: psycopg.Connection[Any]) -> list[DisplayToken]:
    return [DisplayToken(int(r[0]), str(r[1]), *r[2:]) for r in conn.execute(LIST).fetchall()]


def find_token(conn: psycopg.Connection[Any], secret: object, now: datetime) -> DisplayToken | None:
    """The live (not revoked, not expired) token with this secret, marked used; else None."""
    if not isinstance(secret, str) or not TOKEN_RE.match(secret):
        return None
    row = conn.execute(FIND, {"hash": digest(secret), "now": now}).fetchone()
    if row is None:
        return None
    conn.execute(TOUCH, {"now": now, "id": row[0]})
    return DisplayToken(int(row[0]), str(row[1]), *row[2:])
