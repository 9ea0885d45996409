"""Callback step's configuration: a city pack's targets, alert thresholds and wall settings.

Read from the pack's targets.toml (chỉ tiêu) and checked once; defaults where it is silent.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from ioc.core.citypack.model import PackError
from ioc.core.citypack.pack import pack_dir
from ioc.core.feeds import AIR_QUALITY, DOSSIERS, FEED_NAMES, FEEDBACK, PAYMENTS
from ioc.core.queries import air_quality, dossiers, feedback, payments

TARGETS_FILE: Final = "targets.toml"
# Every numeric KPI the queries define, by feed (aqi_category is a label, not a number).
KPI_FEED: Final[Mapping[str, str]] = {
    **{k: DOSSIERS.name for k in dossiers.KPIS},
    **{k: PAYMENTS.name for k in payments.KPIS},
    **{k: FEEDBACK.name for k in feedback.KPIS},
    **{k: AIR_QUALITY.name for k in air_quality.KPIS if k != "aqi_category"},
}


@dataclass(frozen=True)
class Target:
    """A KPI's target for the city and, where set, for single wards."""

    city: float | None = None
    wards: Mapping[str, float] = field(default_factory=dict)

    def for_ward(self, code: str) -> float | None:
        return self.wards.get(code)


@dataclass(frozen=True)
class Alerts:
    """Alert thresholds."""

    aqi_min: int = 151
    overdue_backlog_max: int = 40
    feed_stalled_after_s: float = 60.0
    dead_letter_window_s: float = 300.0
    dead_letter_spike: int = 20
    ack_hold_s: float = 4 * 3600.0


@dataclass(frozen=True)
class Wall:
    """Wall display: refresh period, KPI rotation."""

    refresh_ms: int = 1000
    rotate_seconds: float = 20.0
    resume_after_seconds: float = 120.0
    rotation: tuple[str, ...] = ("aqi", "online_share", "overdue_backlog", "transactions")


@dataclass(frozen=True)
class DashboardConfig:
    """Everything targets.toml says; defaults where it is silent."""

    wall: Wall = field(default_factory=Wall)
    stale_after_s: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(FEED_NAMES, 60.0)
    )
    alerts: Alerts = field(default_factory=Alerts)
    targets: Mapping[str, Target] = field(default_factory=dict)

    def target(self, kpi: str, ward: str | None = None) -> float | None:
        """The city's target (ward=None) or the ward's own target for a KPI, if one is set."""
        t = self.targets.get(kpi)
        if t is None:
            return None
        return t.city if ward is None else t.for_ward(ward)


def _number(where: str, raw: Any, *, positive: bool = True) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PackError(f"{where} must be a number, not {raw!r}")
    if positive and raw <= 0:
        raise PackError(f"{where} must be > 0, not {raw!r}")
    return float(raw)


def _table(where: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise PackError(f"{where} must be a table")
    return raw


def _only(where: str, raw: dict[str, Any], known: set[str]) -> None:
    extra = sorted(set(raw) - known)
    if extra:
        raise PackError(f"{where}: unknown key {extra[0]!r} (known: {', '.join(sorted(known))})")


def parse_config(raw: Mapping[str, Any], where: str, wards: frozenset[str]) -> DashboardConfig:
    """Check and type the parsed TOML; PackError naming the first bad entry."""
    _only(where, dict(raw), {"wall", "feeds", "alerts", "targets"})
    return DashboardConfig(
        wall=_parse_wall(where, raw.get("wall", {})),
        stale_after_s=_parse_feeds(where, raw.get("feeds", {})),
        alerts=_parse_alerts(where, raw.get("alerts", {})),
        targets=_parse_targets(where, raw.get("targets", {}), wards),
    )


def _parse_wall(where: str, raw: Any) -> Wall:
    wall_raw = _table(f"{where} [wall]", raw)
    _only(
        f"{where} [wall]",
        wall_raw,
        {"refresh_ms", "rotate_seconds", "resume_after_seconds", "rotation"},
    )
    rotation = wall_raw.get("rotation", list(Wall().rotation))
    if not isinstance(rotation, list) or not rotation:
        raise PackError(f"{where} [wall] rotation must be a non-empty list of KPI names")
    for kpi in rotation:
        if kpi not in KPI_FEED:
            raise PackError(f"{where} [wall] rotation: unknown KPI {kpi!r}")
    return Wall(
        refresh_ms=int(_number(f"{where} wall.refresh_ms", wall_raw.get("refresh_ms", 1000))),
        rotate_seconds=_number(f"{where} wall.rotate_seconds", wall_raw.get("rotate_seconds", 20)),
        resume_after_seconds=_number(
            f"{where} wall.resume_after_seconds", wall_raw.get("resume_after_seconds", 120)
        ),
        rotation=tuple(str(k) for k in rotation),
    )


def _parse_feeds(where: str, raw: Any) -> dict[str, float]:
    """Seconds of silence after which each feed's data is called stale."""
    feeds_raw = _table(f"{where} [feeds]", raw)
    _only(f"{where} [feeds]", feeds_raw, set(FEED_NAMES))
    stale = dict.fromkeys(FEED_NAMES, 60.0)
    for feed, entry in feeds_raw.items():
        entry = _table(f"{where} [feeds.{feed}]", entry)
        _only(f"{where} [feeds.{feed}]", entry, {"stale_after_s"})
        if "stale_after_s" in entry:
            stale[feed] = _number(f"{where} feeds.{feed}.stale_after_s", entry["stale_after_s"])
    return stale


def _parse_alerts(where: str, raw: Any) -> Alerts:
    alerts_raw = _table(f"{where} [alerts]", raw)
    defaults = Alerts()
    _only(f"{where} [alerts]", alerts_raw, set(defaults.__dataclass_fields__))
    values = {
        name: _number(f"{where} alerts.{name}", alerts_raw.get(name, getattr(defaults, name)))
        for name in defaults.__dataclass_fields__
    }
    return Alerts(
        aqi_min=int(values["aqi_min"]),
        overdue_backlog_max=int(values["overdue_backlog_max"]),
        feed_stalled_after_s=values["feed_stalled_after_s"],
        dead_letter_window_s=values["dead_letter_window_s"],
        dead_letter_spike=int(values["dead_letter_spike"]),
        ack_hold_s=values["ack_hold_s"],
    )


def _parse_targets(where: str, raw: Any, wards: frozenset[str]) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for kpi, entry in _table(f"{where} [targets]", raw).items():
        if kpi not in KPI_FEED:
            raise PackError(f"{where} [targets.{kpi}]: unknown KPI")
        entry = _table(f"{where} [targets.{kpi}]", entry)
        _only(f"{where} [targets.{kpi}]", entry, {"city", "wards"})
        city = entry.get("city")
        ward_targets: dict[str, float] = {}
        for code, value in _table(f"{where} targets.{kpi}.wards", entry.get("wards", {})).items():
            if code not in wards:
                raise PackError(f"{where} targets.{kpi}.wards: {code!r} is not a ward of the pack")
            ward_targets[code] = _number(f"{where} targets.{kpi}.wards.{code}", value)
        targets[kpi] = Target(
            city=None if city is None else _number(f"{where} targets.{kpi}.city", city),
            wards=ward_targets,
        )
    return targets


def read_config(path: Path, wards: frozenset[str]) -> DashboardConfig:
    """A targets.toml file; defaults when it does not exist."""
    if not path.is_file():
        return DashboardConfig()
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise PackError(f"{path}: {exc}") from None
    return parse_config(raw, str(path), wards)


@lru_cache(maxsize=8)
def load_config(pack_name: str, wards: frozenset[str]) -> DashboardConfig:
    """The named pack's dashboard configuration (cached per process)."""
    return read_config(pack_dir(pack_name) / TARGETS_FILE, wards)
