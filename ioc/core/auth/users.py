"""Access control, table users: add, remove, list and re-password dashboard users (as the admin
role, from the CLI), and the one read login needs (as the dashboard's role)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import psycopg

from ioc.core.auth.principals import Principal, check_name, check_role
from ioc.core.errors import IocError

INSERT: Final = """
INSERT INTO users (username, password_hash, role, wards)
VALUES (%(name)s, %(hash)s, %(role)s, %(wards)s)
ON CONFLICT (username) DO NOTHING
RETURNING user_id
"""
DELETE: Final = "DELETE FROM users WHERE username = %(name)s RETURNING user_id"
LIST: Final = """
SELECT user_id, username, role, wards, disabled, created_at, password_changed_at
FROM users ORDER BY username
"""
REHASH: Final = """
UPDATE users SET password_hash = %(hash)s, password_changed_at = now()
WHERE username = %(name)s RETURNING user_id
"""
# A new password ends every session the old one opened.
END_SESSIONS: Final = "DELETE FROM sessions WHERE user_id = %(id)s"
FOR_LOGIN: Final = """
SELECT user_id, password_hash, role, wards FROM users
WHERE username = %(name)s AND NOT disabled
"""


class UserError(IocError, ValueError):
    """A user operation that cannot be done as asked; one line."""


@dataclass(frozen=True)
class User:
    """A row of users, without its hash."""

    user_id: int
    username: str
    role: str
    wards: tuple[str, ...] | None
    disabled: bool
    created_at: datetime
    password_changed_at: datetime


@dataclass(frozen=True)
class LoginRecord:
    """What login needs: the id, the stored hash and who the user is once verified."""

    user_id: int
    password_hash: str
    principal: Principal


def add_user(
    conn: psycopg.Connection[Any],
    username: str,
    password_hash: str,
    role: str,
    wards: Sequence[str] | None,
) -> int:
    """Insert a user; UserError when the name is taken. Only managers may be ward-scoped."""
    check_name(username)
    checked = check_role(role)
    if wards is not None and checked != "manager":
        raise UserError("only managers are scoped to wards; operators and admins see the city")
    row = conn.execute(
        INSERT,
        {
            "name": username,
            "hash": password_hash,
            "role": checked,
            "wards": list(wards) if wards is not None else None,
        },
    ).fetchone()
    if row is None:
        raise UserError(f"user {username} already exists")
    return int(row[0])


def remove_user(conn: psycopg.Connection[Any], username: str) -> bool:
    """Delete a user (its sessions go with it); False when there was none."""
    return conn.execute(DELETE, {"name": username}).fetchone() is not None


def list_users(conn: psycopg.Connection[Any]) -> list[User]:
    return [
        User(int(r[0]), str(r[1]), str(r[2]), tuple(r[3]) if r[3] is not None else None, *r[4:])
        for r in conn.execute(LIST).fetchall()
    ]


def set_password(conn: psycopg.Connection[Any], username: str, password_hash: str) -> bool:
    """Replace the hash and end the user's sessions; False when there is no such user."""
    with conn.transaction():
        row = conn.execute(REHASH, {"name": username, "hash": password_hash}).fetchone()
        if row is None:
            return False
        conn.execute(END_SESSIONS, {"id": row[0]})
    return True


def for_login(conn: psycopg.Connection[Any], username: str) -> LoginRecord | None:
    """The enabled user called `username`, or None (also for names that cannot exist)."""
    try:
        check_name(username)
    except ValueError:
        return None
    row = conn.execute(FOR_LOGIN, {"name": username}).fetchone()
    if row is None:
        return None
    wards = frozenset(row[3]) if row[3] is not None else None
    return LoginRecord(int(row[0]), str(row[1]), Principal(username, str(row[2]), "user", wards))
