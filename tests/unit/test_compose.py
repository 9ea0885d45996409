"""compose.yaml cannot run on the test machines, so its names, database roles and the TimescaleDB
init script are checked against the settings and the migrations' role names instead."""

from __future__ import annotations

import re
import stat
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from ioc.app.settings import PREFIX, Settings
from ioc.core.db.migrate import READER_ROLE, WRITER_ROLE

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = Path("deploy/postgres-init/10-ioc-roles.sh")
INIT_DIR = "/docker-entrypoint-initdb.d"
PASSWORDS = ("IOC_DB_PASSWORD", "IOC_WRITER_PASSWORD", "IOC_READER_PASSWORD")
# postgresql://user:${VAR:?message}@host:port/db - the only URL form the file should use.
URL_RE = re.compile(
    r"^postgresql://(?P<user>[a-z_][a-z0-9_]*):\$\{(?P<var>[A-Z_][A-Z0-9_]*):\?[^}]+\}"
    r"@(?P<host>[a-z0-9_-]+):(?P<port>\d+)/(?P<db>[a-z_][a-z0-9_]*)$"
)
INTERPOLATION_RE = re.compile(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)")
REQUIRED_OR_DEFAULTED_RE = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*(:?\?.+|:?-.*)\}$")


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {str(k): str(v) for k, v in env.items()}


def _concrete(env: dict[str, str]) -> dict[str, str]:
    # Compose substitutes ${VAR:?msg}; a literal stand-in shows the rest parses as settings.
    return {k: re.sub(r"\$\{[^}]+\}", "secret", v) for k, v in env.items()}


def _url(service: str) -> re.Match[str]:
    raw = _env(_compose()["services"][service]).get("IOC_DATABASE_URL")
    assert raw is not None, f"{service} has no IOC_DATABASE_URL"
    match = URL_RE.match(raw)
    assert match is not None, f"{service}: {raw!r} is not postgresql://user:${{VAR:?msg}}@host/db"
    return match


def _script() -> str:
    return (ROOT / INIT_SCRIPT).read_text(encoding="utf-8")


def _script_sql() -> str:
    """The here-document psql reads; its delimiter must be quoted so the shell expands nothing."""
    match = re.search(r"<<\s*(['\"])(\w+)\1\n(.*?)\n\2\n", _script(), re.DOTALL)
    assert match is not None, "the SQL must be a here-document with a quoted delimiter (<<'SQL')"
    return match.group(3)


def _psql_sets() -> dict[str, str]:
    """psql variable -> the environment variable the script passes as its value."""
    pairs = re.findall(r"(?:--set[= ]|-v\s*)(\w+)=\"\$\{?(\w+)\}?\"", _script())
    return dict(pairs)


def _strings(node: Any) -> list[str]:
    """Every key and scalar in the parsed file (comments are gone, as they are for compose)."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_services_present_with_health_checks() -> None:
    services = _compose()["services"]
    expected = {"kafka", "timescaledb", "migrate", "simulators", "ingest", "dashboard"}
    assert expected <= set(services)
    for name in ("kafka", "timescaledb", "dashboard"):
        assert "healthcheck" in services[name], name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb")
    assert "timescale-data" in _compose()["volumes"]


def test_database_is_healthy_only_over_tcp() -> None:
    # The image runs its init scripts on a socket-only server: a socket probe would report
    # healthy before the roles exist and migrate/ingest would race the init script.
    test = _compose()["services"]["timescaledb"]["healthcheck"]["test"]
    command = test[-1] if isinstance(test, list) else str(test)
    assert "pg_isready" in command
    assert re.search(r"(-h|--host)[= ]\s*(127\.0\.0\.1|localhost)\b", command), command


def test_environment_names_are_settings_and_parse() -> None:
    known = {PREFIX + f.name.upper() for f in fields(Settings)}
    services = _compose()["services"]
    project = [n for n, s in services.items() if "build" in s]
    assert set(project) == {"migrate", "simulators", "ingest", "dashboard"}
    for name in project:
        env = _env(services[name])
        ioc_vars = {k for k in env if k.startswith(PREFIX)}
        assert ioc_vars <= known, f"{name}: {sorted(ioc_vars - known)} are not settings"
        settings = Settings.from_env(_concrete(env))
        assert settings.kafka_bootstrap == "kafka:9092"
        if name != "simulators":
            assert settings.database_url is not None, name
            assert "@timescaledb:5432/" in settings.database_url


def test_each_service_logs_in_as_its_least_role() -> None:
    services = _compose()["services"]
    db = _env(services["timescaledb"])
    admin = db["POSTGRES_USER"]
    assert admin not in {WRITER_ROLE, READER_ROLE}
    expected = {"migrate": admin, "ingest": WRITER_ROLE, "dashboard": READER_ROLE}
    with_url = {n for n, s in services.items() if "IOC_DATABASE_URL" in _env(s)}
    # A new service must be given its role here, not inherit one by accident.
    assert with_url == set(expected), f"services with a database URL: {sorted(with_url)}"
    for name, role in expected.items():
        url = _url(name)
        assert url.group("user") == role, f"{name} logs in as {url.group('user')}, not {role}"
        assert url.group("host") == "timescaledb"
        assert url.group("db") == db["POSTGRES_DB"]
    # Simulators only produce to Kafka: no database credentials at all.
    assert not any("PASSWORD" in v for v in _env(services["simulators"]).values())


def test_each_url_password_is_the_one_its_role_gets() -> None:
    """Role -> psql variable (SQL) -> container variable (psql --set) -> compose variable
    (timescaledb's environment) must end at the variable in that role's service URL."""
    db_env = _env(_compose()["services"]["timescaledb"])
    role_to_psql = dict(
        re.findall(r"ALTER ROLE (\w+) WITH [^;]*\bPASSWORD :'(\w+)'\s*;", _script_sql())
    )
    assert set(role_to_psql) == {WRITER_ROLE, READER_ROLE}
    sets = _psql_sets()
    chains = {"migrate": db_env["POSTGRES_PASSWORD"]}
    for service, role in (("ingest", WRITER_ROLE), ("dashboard", READER_ROLE)):
        container_var = sets[role_to_psql[role]]
        chains[service] = db_env[container_var]
    for service, value in chains.items():
        compose_var = re.fullmatch(r"\$\{([A-Z_][A-Z0-9_]*):\?[^}]+\}", value)
        assert compose_var is not None, f"{service}'s password reaches the database as {value!r}"
        assert _url(service).group("var") == compose_var.group(1), service
    assert len(set(chains.values())) == 3, "each role needs its own password"


def test_init_script_is_mounted_read_only() -> None:
    host = ROOT / INIT_SCRIPT
    assert host.is_file()
    # The image executes it when executable (sources it otherwise); either works, exec is cleaner.
    assert host.stat().st_mode & stat.S_IXUSR, f"chmod +x {INIT_SCRIPT}"
    volumes = [str(v) for v in _compose()["services"]["timescaledb"]["volumes"]]
    mounts = [v.split(":") for v in volumes if v.startswith(("./", "/"))]
    wanted = [m for m in mounts if (ROOT / m[0]).resolve() == host.resolve()]
    assert len(wanted) == 1, f"{INIT_SCRIPT} is not mounted: {volumes}"
    _, target, *options = wanted[0]
    # The file, not the directory: the image's own init scripts live beside it.
    assert target == f"{INIT_DIR}/{INIT_SCRIPT.name}"
    assert options == ["ro"]


def test_init_script_sql_uses_psql_variables() -> None:
    script = _script()
    body = _script_sql()
    assert "ON_ERROR_STOP=1" in script
    code = "\n".join(ln for ln in script.splitlines() if not ln.lstrip().startswith("#"))
    # One psql run, fed only by the here-document: no SQL assembled on a command line.
    assert len(re.findall(r"^\s*psql\b", code, re.MULTILINE)) == 1
    assert not re.search(r"\s(-c|--command|-f|--file)[\s=]", code), "SQL outside the here-document"
    # Nothing for the shell (or a DO $$ block, where psql does not substitute) in the SQL.
    assert "$" not in body
    sets = _psql_sets()
    assert set(sets.values()) == {"IOC_WRITER_PASSWORD", "IOC_READER_PASSWORD"}
    used = set(re.findall(r":'(\w+)'", body))
    assert used == set(sets), f"psql variables used {sorted(used)}, set {sorted(sets)}"
    passwords = re.findall(r"\bPASSWORD\s+(\S+?);?$", body, re.MULTILINE | re.IGNORECASE)
    assert len(passwords) == 2
    assert all(re.fullmatch(r":'\w+'", p) for p in passwords), passwords
    for role in (WRITER_ROLE, READER_ROLE):
        assert re.search(rf"^CREATE ROLE {role};$", body, re.MULTILINE), role
        assert re.search(rf"^ALTER ROLE {role} WITH LOGIN\b", body, re.MULTILINE), role
    grant = re.search(r"^GRANT CONNECT ON DATABASE (\S+) TO (.+);$", body, re.MULTILINE)
    assert grant is not None
    database = _env(_compose()["services"]["timescaledb"])["POSTGRES_DB"]
    assert grant.group(1) in {':"DBNAME"', database}
    assert {r.strip() for r in grant.group(2).split(",")} == {WRITER_ROLE, READER_ROLE}
    for var in sets.values():
        assert re.search(rf'^: "\$\{{{var}:\?[^}}]+\}}"$', script, re.MULTILINE), (
            f"the script must stop when {var} is unset"
        )


def test_every_variable_is_required_or_defaulted() -> None:
    found = [m.group(1) for s in _strings(_compose()) for m in INTERPOLATION_RE.finditer(s)]
    assert found, "no ${VAR} found: the pattern is broken"
    for ref in found:
        if ref == "$":  # $$ is compose's escaped dollar
            continue
        assert REQUIRED_OR_DEFAULTED_RE.match(ref), f"${ref} is neither ${{X:?msg}} nor ${{X:-d}}"
    for var in PASSWORDS:
        refs = [r for r in found if re.match(rf"^\{{{var}\b", r)]
        assert refs, f"{var} is not used"
        # A default for a password would be a secret in the repository.
        assert all(r.startswith(f"{{{var}:?") for r in refs), f"{var} must be required"


def test_ports_agree_with_settings() -> None:
    services = _compose()["services"]
    dash = services["dashboard"]
    settings = Settings.from_env(_concrete(_env(dash)))
    published = [str(p) for p in dash["ports"]]
    assert f"127.0.0.1:{settings.dashboard_port}:{settings.dashboard_port}" in published
    listeners = _env(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    assert listeners.endswith("kafka:9092")


def test_secrets_are_not_in_the_file() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"^\s*\w*PASSWORD\w*:\s*[^$\s]", text, re.MULTILINE), (
        "a literal password in compose.yaml"
    )
    for line in text.splitlines():
        if "postgresql://" in line:
            assert re.search(r"postgresql://\w+:\$\{", line), f"a literal password: {line.strip()}"
