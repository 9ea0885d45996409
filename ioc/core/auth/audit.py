"""Access control, table audit_log: one row per login, logout, display exchange,
acknowledgement, export and user change. Details are short strings and numbers only - callers
never pass passwords, and values are cut to bounded lengths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import psycopg
from psycopg.types.json import Jsonb

Outcome = Literal["ok", "refused", "failed", "limited"]
ACTION_RE: Final = re.compile(r"^[a-z][a-z_.-]{0,39}$")

INSERT: Final = """
INSERT INTO audit_log (actor, action, outcome, ip, detail)
VALUES (%(actor)s, %(action)s, %(outcome)s, %(ip)s, %(detail)s)
"""
RECENT: Final = """
SELECT at, actor, action, outcome, ip, detail FROM audit_log ORDER BY audit_id DESC LIMIT %(n)s
"""


def _text(value: object, limit: int) -> str:
    # jsonb refuses NUL and a terminal reading the log should not obey escape codes.
    return "".join(c if c.isprintable() else "?" for c in str(value)[:limit])


def _clean(detail: Mapping[str, object] | None) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in list((detail or {}).items())[:12]:
        finite = isinstance(value, float) and value == value and abs(value) != float("inf")
        if isinstance(value, bool | int) or value is None or finite:
            out[_text(key, 40)] = value
        else:
            out[_text(key, 40)] = _text(value, 120)
    return out


def record(
    conn: psycopg.Connection[Any],
    action: str,
    outcome: Outcome,
    *,
    actor: str = "",
    ip: str = "",
    detail: Mapping[str, object] | None = None,
) -> None:
    """Append one row; `action` is a constant of the caller's (e.g. "login")."""
    if not ACTION_RE.match(action):
        raise ValueError(f"bad audit action {action!r}")
    conn.execute(
        INSERT,
        {
            "actor": _text(actor, 100),
            "action": action,
            "outcome": outcome,
            "ip": _text(ip, 64),
            "detail": Jsonb(_clean(detail)),
        },
    )


def recent(
    conn: psycopg.Connection[Any], n: int = 50
) -> list[tuple[datetime, str, str, str, str, dict[str, Any]]]:
    """The newest `n` rows, newest first (admin role)."""
    return [
        (r[0], str(r[1]), str(r[2]), str(r[3]), str(r[4]), dict(r[5]))
        for r in conn.execute(RECENT, {"n": n}).fetchall()
    ]
