"""Entry point of access control: `ioc users add|remove|list|set-password|audit` and
`ioc users display-token create|revoke|list`, run as the database's admin role."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import psycopg
from psycopg import sql

from ioc.app.cli import CommandError
from ioc.app.connect import database_url
from ioc.app.settings import Settings
from ioc.core.auth import audit, tokens, users
from ioc.core.auth.passwords import PasswordPolicyError, check_policy, hash_password
from ioc.core.auth.principals import ROLES, check_name, check_wards
from ioc.core.db.schema import SchemaNotMigratedError, migrate_hint, require_migrated
from ioc.core.errors import NoDatabaseError

MAX_TOKEN_DAYS = 3650


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("users", help="dashboard users, roles, ward scopes and display tokens")
    actions = p.add_subparsers(dest="users_action", required=True)
    add = actions.add_parser("add", help="add a user (password from a prompt or --password-stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    scope = add.add_mutually_exclusive_group()
    scope.add_argument("--wards", help="managers: comma-separated ward codes they may see")
    scope.add_argument("--city", action="store_true", help="managers: the whole city (default)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=add_command)
    rm = actions.add_parser("remove", help="remove a user and end their sessions")
    rm.add_argument("name")
    rm.set_defaults(func=remove_command)
    ls = actions.add_parser("list", help="list users, roles and scopes (never hashes)")
    ls.set_defaults(func=list_command)
    pw = actions.add_parser("set-password", help="replace a password; ends the user's sessions")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    pw.set_defaults(func=set_password_command)
    log = actions.add_parser("audit", help="the newest audit-log rows")
    log.add_argument("-n", type=int, default=30, help="rows (default 30, at most 1000)")
    log.set_defaults(func=audit_command)
    dt = actions.add_parser("display-token", help="wall-display tokens (wall view only)")
    dt_actions = dt.add_subparsers(dest="token_action", required=True)
    create = dt_actions.add_parser("create", help="create a token; its URL is printed once")
    create.add_argument("name")
    create.add_argument("--days", type=int, default=365, help="lifetime in days (default 365)")
    create.add_argument("--url", default="", help="dashboard base URL for the printed link")
    create.set_defaults(func=token_create_command)
    revoke = dt_actions.add_parser("revoke", help="revoke a token and end its sessions now")
    revoke.add_argument("name")
    revoke.set_defaults(func=token_revoke_command)
    tl = dt_actions.add_parser("list", help="list tokens (never the secrets)")
    tl.set_defaults(func=token_list_command)


@contextmanager
def _admin(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    try:
        url = database_url(settings, "admin")
        conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
    except NoDatabaseError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.Error as exc:
        raise CommandError(f"cannot connect to the database: {_first(exc)}") from None
    try:
        # Exactly the configured schema, as every other command: users are never looked up in,
        # or added to, another schema's tables.
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(settings.db_schema)))
        require_migrated(conn, settings.db_schema)
        exists = conn.execute("SELECT to_regclass('users') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            raise CommandError(
                f"schema {settings.db_schema!r} has no users table; "
                f"run: {migrate_hint(settings.db_schema)}"
            )
        yield conn
    except SchemaNotMigratedError as exc:
        raise CommandError(str(exc)) from None
    except psycopg.Error as exc:
        raise CommandError(f"database error: {_first(exc)}") from None
    finally:
        conn.close()


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _name(raw: str, what: str = "user name") -> str:
    try:
        return check_name(raw, what)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """One password: a line of stdin with --password-stdin, else typed twice at a prompt."""
    stream = stdin or sys.stdin
    if from_stdin:
        line = stream.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password.removesuffix("\r")
    else:
        if not stream.isatty():
            raise CommandError("no terminal to prompt on: pipe the password with --password-stdin")
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise CommandError("the two passwords differ")
    try:
        check_policy(password)
    except PasswordPolicyError as exc:
        raise CommandError(str(exc)) from None
    return password


def add_command(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name)
    wards: tuple[str, ...] | None = None
    if args.wards is not None:
        from ioc.core.citypack import load_pack

        try:
            wards = check_wards(args.wards.split(","), load_pack(settings.city_pack).codes)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    password = read_password(args.password_stdin)
    with _admin(settings) as conn:
        try:
            users.add_user(conn, name, hash_password(password), args.role, wards)
        except (users.UserError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        scope = ",".join(wards) if wards else "city"
        audit.record(conn, "user.add", "ok", actor="cli", detail={"user": name, "scope": scope})
    print(f"user {name} added: {args.role}, scope {scope}")
    return 0


def remove_command(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name)
    with _admin(settings) as conn:
        if not users.remove_user(conn, name):
            raise CommandError(f"no user {name}")
        audit.record(conn, "user.remove", "ok", actor="cli", detail={"user": name})
    print(f"user {name} removed")
    return 0


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as conn:
        rows = users.list_users(conn)
    print(f"{'user':<24} {'role':<9} {'state':<8} scope")
    for u in rows:
        scope = ",".join(u.wards) if u.wards is not None else "city"
        state = "disabled" if u.disabled else "enabled"
        print(f"{u.username:<24} {u.role:<9} {state:<8} {scope}")
    return 0


def set_password_command(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name)
    password = read_password(args.password_stdin)
    with _admin(settings) as conn:
        if not users.set_password(conn, name, hash_password(password)):
            raise CommandError(f"no user {name}")
        audit.record(conn, "user.password", "ok", actor="cli", detail={"user": name})
    print(f"password of {name} replaced; their sessions ended")
    return 0


def audit_command(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.n <= 1000:
        raise CommandError("-n must be between 1 and 1000")
    with _admin(settings) as conn:
        rows = audit.recent(conn, args.n)
    for at, actor, action, outcome, ip, detail in rows:
        extra = " ".join(f"{k}={v}" for k, v in sorted(detail.items()))
        print(
            f"{at.isoformat(timespec='seconds')} {outcome:<7} {action:<16} {actor:<20} {ip} {extra}"
        )
    return 0


def token_create_command(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name, "token name")
    if not 1 <= args.days <= MAX_TOKEN_DAYS:
        raise CommandError(f"--days must be between 1 and {MAX_TOKEN_DAYS}")
    base = (args.url or f"http://{settings.dashboard_host}:{settings.dashboard_port}").rstrip("/")
    if not base.startswith(("http://", "https://")) or any(c in base for c in " \t\r\n?#"):
        raise CommandError("--url must be an http(s) base URL such as https://ioc.example.vn")
    now = datetime.now(UTC)
    with _admin(settings) as conn:
        try:
            secret, _id = tokens.create_token(conn, name, timedelta(days=args.days), now)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        audit.record(conn, "token.create", "ok", actor="cli", detail={"token": name})
    print(f"display token {name} (wall view only), valid {args.days} days. Shown once:")
    print(f"  {base}/display?token={secret}")
    print("Open that URL once on the screen; it is exchanged for a session cookie.")
    return 0


def token_revoke_command(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name, "token name")
    with _admin(settings) as conn:
        if not tokens.revoke_token(conn, name, datetime.now(UTC)):
            raise CommandError(f"no display token {name}")
        audit.record(conn, "token.revoke", "ok", actor="cli", detail={"token": name})
    print(f"display token {name} revoked; its screens are logged out")
    return 0


def token_list_command(args: argparse.Namespace, settings: Settings) -> int:
    with _admin(settings) as conn:
        rows = tokens.list_tokens(conn)
    print(f"{'token':<24} {'state':<8} {'expires':<20} last used")
    now = datetime.now(UTC)
    for tk in rows:
        state = "revoked" if tk.revoked_at else ("expired" if tk.expires_at <= now else "live")
        used = tk.last_used_at.isoformat(timespec="seconds") if tk.last_used_at else "never"
        print(f"{tk.name:<24} {state:<8} {tk.expires_at.isoformat(timespec='minutes'):<20} {used}")
    return 0
