"""Settings: built once from IOC_* variables; bad values are one clear line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.app.settings import Settings, SettingsError


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.dashboard_port == 8050
    assert s.dashboard_debug is False
    assert s.topic("ioc.payments.v1") == "ioc.payments.v1"


def test_values_are_read_and_typed() -> None:
    s = Settings.from_env(
        {
            "IOC_DATABASE_URL": "postgresql://u@127.0.0.1:5432/ioc",
            "IOC_KAFKA_BOOTSTRAP": "127.0.0.1:9092,127.0.0.1:9093",
            "IOC_TOPIC_PREFIX": "test.",
            "IOC_CONSUMER_GROUP": "g1",
            "IOC_CITY_PACK": "halong",
            "IOC_DASHBOARD_HOST": "0.0.0.0",  # noqa: S104 - a value under test, not a bind
            "IOC_DASHBOARD_PORT": "9000",
            "IOC_DATA_DIR": "/tmp/ioc-x",  # noqa: S108
            "IOC_DASHBOARD_DEBUG": "true",
            "PATH": "/usr/bin",
        }
    )
    assert s.dashboard_port == 9000
    assert s.data_dir == Path("/tmp/ioc-x")  # noqa: S108
    assert s.dashboard_debug is True
    assert s.topic("ioc.feedback.v1") == "test.ioc.feedback.v1"
    assert s.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9093"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"IOC_DASHBOARD_PORT": "eighty"}, "IOC_DASHBOARD_PORT"),
        ({"IOC_DASHBOARD_PORT": "70000"}, "IOC_DASHBOARD_PORT"),
        ({"IOC_DASHBOARD_DEBUG": "maybe"}, "IOC_DASHBOARD_DEBUG"),
        ({"IOC_KAFKA_BOOTSTRAP": "localhost"}, "IOC_KAFKA_BOOTSTRAP"),
        ({"IOC_KAFKA_BOOTSTRAP": "localhost:port"}, "IOC_KAFKA_BOOTSTRAP"),
        ({"IOC_DATABASE_URL": "mysql://x"}, "IOC_DATABASE_URL"),
        ({"IOC_TOPIC_PREFIX": "bad prefix!"}, "IOC_TOPIC_PREFIX"),
        ({"IOC_CONSUMER_GROUP": ""}, "IOC_CONSUMER_GROUP"),
        ({"IOC_DATA_DIR": " "}, "IOC_DATA_DIR"),
        ({"IOC_DASHBORD_PORT": "1"}, "IOC_DASHBORD_PORT"),
    ],
)
def test_bad_values_name_the_variable_in_one_line(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    message = str(info.value)
    assert name in message
    assert "\n" not in message


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.dashboard_port = 1  # type: ignore[misc]


def test_cli_reports_bad_setting_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ioc.app.cli import main

    monkeypatch.setenv("IOC_DASHBOARD_PORT", "nope")
    status = main(["db", "status"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert "IOC_DASHBOARD_PORT" in err


def test_earliest_event_time_defaults_to_the_contracts_bound() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from ioc.core.contracts import EARLIEST_EVENT_TIME

    assert Settings.from_env({}).earliest_event_time == EARLIEST_EVENT_TIME
    day = Settings.from_env({"IOC_EARLIEST_EVENT_TIME": "1990-01-01"}).earliest_event_time
    assert day == datetime(1990, 1, 1, tzinfo=UTC)
    ict = timezone(timedelta(hours=7))
    local = Settings.from_env({"IOC_EARLIEST_EVENT_TIME": " 2010-06-01T07:00+07:00 "})
    assert local.earliest_event_time == datetime(2010, 6, 1, 7, 0, tzinfo=ict)
    zulu = Settings.from_env({"IOC_EARLIEST_EVENT_TIME": "1970-01-01T00:00:00Z"})
    assert zulu.earliest_event_time == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("", "not an ISO 8601 date"),
        ("last year", "not an ISO 8601 date"),
        ("2000-13-01", "not an ISO 8601 date"),
        ("2000-01-01T00:00", "needs a UTC offset"),
        ("2999-01-01", "in the future"),
    ],
)
def test_bad_earliest_event_time_is_one_line(raw: str, says: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"IOC_EARLIEST_EVENT_TIME": raw})
    message = str(info.value)
    assert message.startswith(f"IOC_EARLIEST_EVENT_TIME={raw!r} ")
    assert says in message
    assert "\n" not in message
