"""Access control, pure parts: password policy and argon2id hashes, the login limiter's windows,
roles and ward scopes, the gate's request-shape checks and CSP, the wall's input sanitisers,
audit details and the CLI's password reading."""

from __future__ import annotations

import io
from typing import Any

import pytest

from ioc.app.cli import CommandError
from ioc.app.settings import Settings, SettingsError
from ioc.core.auth.audit import _clean
from ioc.core.auth.passwords import (
    MAX_LENGTH,
    PasswordPolicyError,
    check_policy,
    hash_password,
    verify_password,
)
from ioc.core.auth.principals import OPEN, ROLE_PERMISSIONS, Principal, check_name, check_wards
from ioc.core.auth.ratelimit import LoginLimiter
from ioc.core.auth.sessions import valid_secret
from ioc.core.auth.tokens import TOKEN_RE
from layouts.pages.wall.inputs import ack_target, rotation_state, selected_kpi, tile_keys
from layouts.security import callback_output, content_security_policy, safe_next

PASSWORD = "a-good-long-password"  # noqa: S105 - a test value


def test_hashes_are_argon2id_salted_and_verify_only_the_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$") and second.startswith("$argon2id$")
    assert first != second, "salted"
    assert PASSWORD not in first
    assert verify_password(first, PASSWORD)
    assert not verify_password(first, PASSWORD + "x")
    assert not verify_password(first, PASSWORD.upper())
    assert not verify_password(None, PASSWORD), "an unknown user never verifies"
    assert not verify_password("not a hash", PASSWORD)
    assert not verify_password(first, "x" * (MAX_LENGTH + 1))


@pytest.mark.parametrize(
    "bad", ["tiny9", "", " leading-space-pw", "trailing-space-pw ", "with\x00nul-char", "x" * 2000]
)
def test_password_policy_refuses(bad: str) -> None:
    with pytest.raises(PasswordPolicyError) as exc:
        check_policy(bad)
    assert bad not in str(exc.value) or not bad.strip()


def test_limiter_per_user_per_address_and_window() -> None:
    now = [1000.0]
    lim = LoginLimiter(per_ip=4, per_user=2, window_s=60, clock=lambda: now[0])
    assert lim.retry_after("1.1.1.1", "op") == 0
    lim.failed("1.1.1.1", "op")
    lim.failed("1.1.1.1", "OP ")  # same user, however typed
    assert lim.retry_after("1.1.1.1", "op") == pytest.approx(60)
    assert lim.retry_after("2.2.2.2", "op") == pytest.approx(60), "the user's limit holds anywhere"
    assert lim.retry_after("1.1.1.1", "boss") == 0
    lim.failed("1.1.1.1", "a")
    lim.failed("1.1.1.1", "b")
    assert lim.retry_after("1.1.1.1", "boss") == pytest.approx(60), "the address's limit"
    now[0] += 30
    assert lim.retry_after("3.3.3.3", "op") == pytest.approx(30)
    now[0] += 30.001
    assert lim.retry_after("1.1.1.1", "op") == 0, "the window slides"
    lim.failed("9.9.9.9", "x")
    lim.failed("9.9.9.9", "x")
    lim.succeeded("9.9.9.9", "x")
    assert lim.retry_after("8.8.8.8", "x") == 0, "a correct password clears the user"


def test_roles_and_scopes() -> None:
    op = Principal("op", "operator")
    mgr = Principal("m", "manager", wards=frozenset({"06673"}))
    display = Principal("lobby", "display", "display")
    assert op.can("ack") and not op.can("ward") and not op.can("export")
    assert mgr.can("ward") and mgr.can("export") and not mgr.can("ack") and not mgr.can("users")
    assert display.permissions == frozenset({"view", "wall"})
    assert ROLE_PERMISSIONS["admin"] >= ROLE_PERMISSIONS["manager"] | ROLE_PERMISSIONS["operator"]
    assert mgr.sees("06673") and not mgr.sees("06697") and not mgr.sees(["06673"])
    assert mgr.scope(["06697", "06673", "06688"]) == ["06673"]
    assert op.scope(["a", "b"]) == ["a", "b"] and OPEN.can("export")
    assert not Principal("x", "nobody").can("view")


def test_names_and_wards_are_checked() -> None:
    assert check_name("mgr-a.1_b") == "mgr-a.1_b"
    for bad in ["", "A", "-x", "x" * 65, "a b", "a'b", "é"]:
        with pytest.raises(ValueError):
            check_name(bad)
    assert check_wards([" 06673", "06673", "06697"], ["06673", "06697"]) == ("06673", "06697")
    for bad in [["99999"], ["0667'"], []]:
        with pytest.raises(ValueError):
            check_wards(bad, ["06673"])


def test_secrets_have_one_shape() -> None:
    assert valid_secret("A" * 43) == "A" * 43
    for bad in [None, 1, "A" * 42, "A" * 44, "A" * 42 + "'", "A" * 42 + "\x00"]:
        assert valid_secret(bad) is None
    assert TOKEN_RE.match("iocd_" + "a" * 43) and not TOKEN_RE.match("iocd_" + "a" * 42 + "/")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("/", "/"),
        ("/ward/06673", "/ward/06673"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
        ("/ward/06673/../../x", "/"),
        (None, "/"),
        (["/"], "/"),
    ],
)
def test_next_is_a_local_page(raw: Any, want: str) -> None:
    assert safe_next(raw) == want


CALLBACKS = {
    "a.b": {"callback": object(), "inputs": [{"id": "x", "property": "p"}], "state": []},
    "client.side": {"inputs": [{"id": "x", "property": "p"}], "state": []},
}
GOOD = {
    "output": "a.b",
    "outputs": {"id": "a", "property": "b"},
    "inputs": [{"id": "x", "property": "p", "value": 1}],
    "changedPropIds": ["x.p"],
}


def test_callback_bodies_must_have_the_callbacks_shape() -> None:
    assert callback_output(GOOD, CALLBACKS) == "a.b"
    wildcard = {**GOOD, "inputs": [[{"id": {"type": "t", "k": 1}, "property": "p"}]]}
    assert callback_output(wildcard, CALLBACKS) == "a.b"
    bad: list[Any] = [
        None,
        [],
        "a.b",
        {**GOOD, "output": "nope"},
        {**GOOD, "output": "client.side"},
        {**GOOD, "inputs": []},
        {**GOOD, "inputs": "x"},
        {**GOOD, "inputs": [[[{"id": "x", "property": "p"}]]]},
        {**GOOD, "inputs": [{"id": ["x"], "property": "p"}]},
        {**GOOD, "inputs": [{"id": "x", "property": 1}]},
        {**GOOD, "state": [{"id": "y", "property": "p"}]},
        {**GOOD, "outputs": "a.b"},
        {**GOOD, "changedPropIds": [1]},
    ]
    for body in bad:
        with pytest.raises(Exception) as exc:
            callback_output(body, CALLBACKS)
        assert getattr(exc.value, "code", None) == 400, body


def test_csp_allows_only_own_and_hashed_scripts() -> None:
    csp = content_security_policy(["'sha256-abc='"], "")
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self' 'sha256-abc='"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe-eval" not in csp and "unsafe-inline" not in directives["script-src"]
    tiles = content_security_policy([], "https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: blob: https://*.tile.example.org" in tiles


def test_wall_inputs_are_sanitised() -> None:
    mgr = Principal("m", "manager", wards=frozenset({"06673"}))
    op = Principal("op", "operator")
    wards = {"06673", "06697"}

    def ack_allowed(kind: object, subject: object, who: Principal) -> bool:
        return ack_target({"kind": kind, "subject": subject}, who, wards) is not None

    assert ack_allowed("aqi", "06673", mgr) and not ack_allowed("aqi", "06697", mgr)
    assert ack_allowed("feed_stalled", "payments", op) and ack_allowed("dead_letters", "city", op)
    for bad in ["0667' --", "x", "06673\x00", None, ["06673"], 1]:
        assert not ack_allowed("aqi", bad, op) and not ack_allowed("feed_stalled", bad, op)
    assert not ack_allowed("aqi:06673", None, op) and ack_target("aqi:06673", op, wards) is None
    assert selected_kpi({"kpi": "aqi"}, "received") == "aqi"
    for bad in [None, [], "aqi", {"kpi": "DROP"}, {"kpi": ["aqi"]}]:
        assert selected_kpi(bad, "received") == "received"
    assert rotation_state({"kpi": "aqi", "paused_at": 5}, "received") == {
        "kpi": "aqi",
        "paused_at": 5.0,
    }
    for bad in [{"paused_at": "x"}, {"paused_at": True}, {"paused_at": float("nan")}, "s"]:
        assert rotation_state(bad, "received")["paused_at"] is None
    assert tile_keys([{"id": {"kpi": "aqi", "type": "tile-value"}}]) == ["aqi"]
    for outputs in [[{"id": {"kpi": "nope"}}], [{"id": "x"}], None, [1]]:
        with pytest.raises(Exception) as exc:
            tile_keys(outputs)
        assert getattr(exc.value, "code", None) == 400


def test_audit_details_are_bounded_text() -> None:
    out = _clean({"key": "a\x00b\x1b[31m" + "x" * 500, "n": 3, "ok": True, "f": float("nan")})
    assert out["key"] == "a?b?[31m" + "x" * 112
    assert out["n"] == 3 and out["ok"] is True and out["f"] == "nan"


def test_cli_reads_one_password_line_and_checks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from ioc.app.commands.auth import read_password

    assert read_password(True, io.StringIO(PASSWORD + "\nignored\n")) == PASSWORD
    assert read_password(True, io.StringIO(PASSWORD + "\r\n")) == PASSWORD
    with pytest.raises(CommandError, match="too short"):
        read_password(True, io.StringIO("short\n"))
    with pytest.raises(CommandError, match="--password-stdin"):
        read_password(False, io.StringIO(""))  # not a terminal: no prompt


def test_session_settings() -> None:
    s = Settings.from_env({"IOC_SESSION_HOURS": "2.5", "IOC_COOKIE_SECURE": "true"})
    assert s.session_hours == 2.5 and s.cookie_secure is True
    assert Settings.from_env({}).session_hours == 12.0
    for bad in ["0", "nan", "x", "1000"]:
        with pytest.raises(SettingsError, match="IOC_SESSION_HOURS"):
            Settings.from_env({"IOC_SESSION_HOURS": bad})


def test_trusted_proxies_setting() -> None:
    assert Settings.from_env({}).trusted_proxies == 0
    assert Settings.from_env({"IOC_TRUSTED_PROXIES": "2"}).trusted_proxies == 2
    for bad in ["-1", "6", "one", "1.5"]:
        with pytest.raises(SettingsError, match="IOC_TRUSTED_PROXIES"):
            Settings.from_env({"IOC_TRUSTED_PROXIES": bad})
