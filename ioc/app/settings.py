"""Entry-point configuration: one frozen settings object built from IOC_* environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from pathlib import Path

from ioc.core.contracts.base import EARLIEST_EVENT_TIME
from ioc.core.errors import IocError

PREFIX = "IOC_"
_TOPIC_PREFIX_RE = re.compile(r"^[A-Za-z0-9._-]*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class SettingsError(IocError, ValueError):
    """A bad configuration value; the message is one line naming the variable."""

    status = 2


@dataclass(frozen=True)
class Settings:
    """Everything the entry points need; built once from the environment and passed down."""

    database_url: str | None = None
    kafka_bootstrap: str | None = None
    topic_prefix: str = ""
    consumer_group: str = "ioc-ingest"
    # Ingest dead-letters events dated before this as too_old (a device with a reset clock).
    earliest_event_time: datetime = EARLIEST_EVENT_TIME
    city_pack: str = "halong"
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    db_schema: str = "public"
    data_dir: Path = Path(".ioc")
    dashboard_debug: bool = False
    # Map background tiles ({z}/{x}/{y} URL template); empty = wards on a plain background.
    map_tiles_url: str = ""
    # Dashboard logins: hours a password session lasts; Secure cookies even over plain http
    # (behind a TLS-terminating proxy). Secure is always set when the request is https.
    session_hours: float = 12.0
    cookie_secure: bool = False
    # Reverse proxies in front of the dashboard that add X-Forwarded-For/-Proto: the client's
    # address (login limits, audit log) and https are read from that many hops. 0 = no proxy,
    # and then such headers are ignored, since anyone can send them.
    trusted_proxies: int = 0
    # Seconds `ioc simulate`/`ioc replay --to kafka` wait for a broker that went away before
    # giving up (they keep their place meanwhile); 0 gives up at once.
    kafka_patience: float = 300.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read IOC_* variables; unknown IOC_ names and bad values raise SettingsError."""
        env = os.environ if environ is None else environ
        known = {PREFIX + f.name.upper() for f in fields(cls)}
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]} (known: {', '.join(sorted(known))})")
        values: dict[str, object] = {}
        for name in ("database_url", "kafka_bootstrap"):
            raw = env.get(PREFIX + name.upper())
            if raw is not None and raw.strip():
                values[name] = raw.strip()
        if (raw := env.get("IOC_TOPIC_PREFIX")) is not None:
            if not _TOPIC_PREFIX_RE.match(raw):
                raise SettingsError(
                    f"IOC_TOPIC_PREFIX={raw!r} may hold only letters, digits, '.', '_' and '-'"
                )
            values["topic_prefix"] = raw
        for name in ("consumer_group", "city_pack", "db_schema"):
            raw = env.get(PREFIX + name.upper())
            if raw is not None:
                values[name] = parse_name(PREFIX + name.upper(), raw)
        if (raw := env.get("IOC_EARLIEST_EVENT_TIME")) is not None:
            values["earliest_event_time"] = parse_instant("IOC_EARLIEST_EVENT_TIME", raw)
        if (raw := env.get("IOC_DASHBOARD_HOST")) is not None:
            if not raw.strip():
                raise SettingsError("IOC_DASHBOARD_HOST is empty; give a host such as 127.0.0.1")
            values["dashboard_host"] = raw.strip()
        if (raw := env.get("IOC_DASHBOARD_PORT")) is not None:
            values["dashboard_port"] = parse_port("IOC_DASHBOARD_PORT", raw)
        if (raw := env.get("IOC_DATA_DIR")) is not None:
            if not raw.strip():
                raise SettingsError("IOC_DATA_DIR is empty; give a directory path")
            values["data_dir"] = Path(raw).expanduser()
        if (raw := env.get("IOC_DASHBOARD_DEBUG")) is not None:
            values["dashboard_debug"] = parse_bool("IOC_DASHBOARD_DEBUG", raw)
        if (raw := env.get("IOC_MAP_TILES_URL")) is not None:
            values["map_tiles_url"] = check_tiles_url("IOC_MAP_TILES_URL", raw.strip())
        if (raw := env.get("IOC_SESSION_HOURS")) is not None:
            values["session_hours"] = parse_hours("IOC_SESSION_HOURS", raw)
        if (raw := env.get("IOC_COOKIE_SECURE")) is not None:
            values["cookie_secure"] = parse_bool("IOC_COOKIE_SECURE", raw)
        if (raw := env.get("IOC_TRUSTED_PROXIES")) is not None:
            values["trusted_proxies"] = parse_hops("IOC_TRUSTED_PROXIES", raw)
        if (raw := env.get("IOC_KAFKA_PATIENCE")) is not None:
            values["kafka_patience"] = parse_patience("IOC_KAFKA_PATIENCE", raw)
        if "kafka_bootstrap" in values:
            check_bootstrap("IOC_KAFKA_BOOTSTRAP", str(values["kafka_bootstrap"]))
        if "database_url" in values:
            check_database_url("IOC_DATABASE_URL", str(values["database_url"]))
        return cls(**values)  # type: ignore[arg-type]

    def topic(self, base: str) -> str:
        """The full topic name for a feed's base topic, e.g. ioc.payments.v1."""
        return self.topic_prefix + base


def parse_name(name: str, raw: str) -> str:
    """A non-empty name of letters, digits, '.', '_' or '-' (a group, pack or schema), or
    SettingsError naming the variable or option."""
    if not _NAME_RE.match(raw):
        raise SettingsError(
            f"{name}={raw!r} must be a non-empty name of letters, digits, '.', '_' or '-'"
        )
    return raw


def _int_in_range(name: str, raw: str, low: int, high: int, what: str) -> int:
    """An integer low..high, or SettingsError naming the variable and saying what it counts."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {what} ({low}-{high})") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} is out of range ({low}-{high})")
    return value


def parse_port(name: str, raw: str) -> int:
    """A TCP port 1..65535, or SettingsError naming the variable."""
    return _int_in_range(name, raw, 1, 65535, "a port number")


def parse_hops(name: str, raw: str) -> int:
    """A count of proxies, 0..5 (empty is 0), or SettingsError naming the variable."""
    return _int_in_range(name, raw.strip() or "0", 0, 5, "a number of proxies")


def parse_hours(name: str, raw: str) -> float:
    """Hours between 0.1 and 720 (30 days), or SettingsError naming the variable."""
    try:
        hours = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number of hours") from None
    if not 0.1 <= hours <= 720:
        raise SettingsError(f"{name}={raw!r} is out of range (0.1-720 hours)")
    return hours


_PATIENCE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h)?$")
_PATIENCE_UNITS = {None: 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_PATIENCE_S = 86_400.0


def parse_patience(name: str, raw: str) -> float:
    """Seconds to wait for a broker: 300, 90s, 5m or 1h, from 0 to 24 h; SettingsError naming
    the option or variable otherwise."""
    found = _PATIENCE_RE.match(raw.strip().lower())
    if not found:
        raise SettingsError(f"{name}={raw!r} is not a duration (e.g. 300, 90s, 5m, 1h)")
    seconds = float(found.group(1)) * _PATIENCE_UNITS[found.group(2)]
    if seconds > MAX_PATIENCE_S:
        raise SettingsError(f"{name}={raw!r} is out of range (0 s to 24 h)")
    return seconds


def parse_bool(name: str, raw: str) -> bool:
    """Common spellings of true/false, or SettingsError naming the variable."""
    low = raw.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def check_bootstrap(name: str, raw: str) -> None:
    """host:port[,host:port...] or SettingsError."""
    for part in raw.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep or not host:
            raise SettingsError(f"{name}={raw!r} must be host:port[,host:port...]")
        parse_port(name, port)


def check_tiles_url(name: str, raw: str) -> str:
    """Empty (no tiles) or an http(s) URL template with {z}, {x} and {y}, or SettingsError."""
    if not raw:
        return ""
    if not raw.startswith(("http://", "https://", "/")) or any(
        part not in raw for part in ("{z}", "{x}", "{y}")
    ):
        raise SettingsError(
            f"{name}={raw!r} must be an http(s) URL template with {{z}}, {{x}} and {{y}}, or empty"
        )
    return raw


def check_database_url(name: str, raw: str) -> None:
    """A postgresql:// URL or a libpq key=value string, or SettingsError."""
    if raw.startswith(("postgresql://", "postgres://")) or "=" in raw:
        return
    raise SettingsError(f"{name}={raw!r} must be a postgresql:// URL or libpq key=value string")


def parse_instant(name: str, raw: str, now: datetime | None = None) -> datetime:
    """An ISO 8601 date (midnight UTC) or date-time with its offset, not after now; else
    SettingsError naming the variable."""
    text = raw.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return _not_after_now(name, raw, datetime(day.year, day.month, day.day, tzinfo=UTC), now)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not an ISO 8601 date or date-time (e.g. 2000-01-01 or "
            "2000-01-01T00:00+07:00)"
        ) from None
    if value.tzinfo is None:
        # Naive times would be read in the server's zone; events carry offsets, so must this.
        raise SettingsError(f"{name}={raw!r} needs a UTC offset (e.g. 2000-01-01T00:00+07:00)")
    return _not_after_now(name, raw, value, now)


def _not_after_now(name: str, raw: str, value: datetime, now: datetime | None) -> datetime:
    if value > (now or datetime.now(UTC)):
        raise SettingsError(f"{name}={raw!r} is in the future: every event would be too old")
    return value
