"""compose.yaml cannot run on the test machines, so its names are checked against the settings."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from ioc.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {str(k): str(v) for k, v in env.items()}


def test_services_present_with_health_checks() -> None:
    services = _compose()["services"]
    expected = {"kafka", "timescaledb", "migrate", "simulators", "ingest", "dashboard"}
    assert expected <= set(services)
    for name in ("kafka", "timescaledb", "dashboard"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb")
    assert "timescale-data" in _compose()["volumes"]


def test_environment_names_are_settings_and_parse() -> None:
    known = {PREFIX + f.name.upper() for f in fields(Settings)}
    services = _compose()["services"]
    project = [n for n, s in services.items() if "build" in s]
    assert set(project) == {"migrate", "simulators", "ingest", "dashboard"}
    for name in project:
        env = _env(services[name])
        ioc_vars = {k for k in env if k.startswith(PREFIX)}
        assert ioc_vars <= known, f"{name}: {sorted(ioc_vars - known)} are not settings"
        # Compose substitutes ${VAR:?msg}; a literal stand-in shows the rest parses as settings.
        concrete = {k: re.sub(r"\$\{[^}]+\}", "secret", v) for k, v in env.items()}
        settings = Settings.from_env(concrete)
        assert settings.kafka_bootstrap == "kafka:9092"
        assert settings.database_url is not None
        assert "@timescaledb:5432/" in settings.database_url


def test_ports_agree_with_settings() -> None:
    services = _compose()["services"]
    dash = services["dashboard"]
    settings = Settings.from_env(
        {k: re.sub(r"\$\{[^}]+\}", "secret", v) for k, v in _env(dash).items()}
    )
    published = [str(p) for p in dash["ports"]]
    assert f"127.0.0.1:{settings.dashboard_port}:{settings.dashboard_port}" in published
    listeners = _env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert listeners.endswith("kafka:9092")


def test_secrets_are_not_in_the_file() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert "${IOC_DB_PASSWORD:?" in text
    assert not re.search(r"^\s*\w*PASSWORD\w*:\s*[^$\s]", text, re.MULTILINE), (
        "a literal password in compose.yaml"
    )
