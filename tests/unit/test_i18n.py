"""Formatters: Vietnamese first (1.234.567 ₫, 82,5 %, dd/mm/yyyy), English by choice."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest

from layouts.i18n import (
    DASH,
    ENUM_LABELS,
    MESSAGES,
    enum_label,
    fmt_ago,
    fmt_date,
    fmt_datetime,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_time,
    fmt_vnd,
    group_digits,
    lang_of,
    t,
)
from layouts.kpis import SPECS


@pytest.mark.parametrize(
    ("value", "digits", "vi", "en"),
    [
        (1234567, 0, "1.234.567", "1,234,567"),
        (1234567.891, 2, "1.234.567,89", "1,234,567.89"),
        (0, 0, "0", "0"),
        (999, 0, "999", "999"),
        (1000, 0, "1.000", "1,000"),
        (-45210.5, 1, "-45.210,5", "-45,210.5"),
        (-0.04, 1, "0,0", "0.0"),
    ],
)
def test_numbers(value: float, digits: int, vi: str, en: str) -> None:
    assert fmt_number(value, "vi", digits) == vi
    assert fmt_number(value, "en", digits) == en


def test_group_digits_matches_python_grouping() -> None:
    for n in (1, 12, 123, 1234, 12345, 123456, 1234567, 10**12 + 7):
        assert group_digits(str(n), ",") == f"{n:,}"


def test_missing_values_are_a_dash() -> None:
    for f in (fmt_number, fmt_percent, fmt_vnd, fmt_duration, fmt_ago):
        assert f(None, "vi") == DASH
        assert f(math.nan, "en") == DASH


def test_money_percent_dates() -> None:
    assert fmt_vnd(1234567, "vi") == "1.234.567 ₫"
    assert fmt_vnd(1234567, "en") == "1,234,567 ₫"
    assert fmt_vnd(5_300_000_000, "vi", compact=True) == "5,3 tỷ ₫"
    assert fmt_vnd(450_000_000, "en", compact=True) == "450.0 m ₫"
    assert fmt_vnd(85_000, "vi", compact=True) == "85.000 ₫"
    assert fmt_percent(0.825, "vi") == "82,5 %"
    assert fmt_percent(0.825, "en") == "82.5%"
    assert fmt_date(date(2026, 3, 9), "vi") == "09/03/2026"
    assert fmt_date(date(2026, 3, 9), "en") == "9 Mar 2026"
    # 23:30 UTC on 20 Nov is 06:30 on 21 Nov in Vietnam.
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    assert fmt_date(late, "vi") == "21/11/2026"
    assert fmt_time(late) == "06:30"
    assert fmt_datetime(late, "vi") == "21/11/2026 06:30"


def test_durations() -> None:
    assert fmt_ago(12, "vi") == "12 giây trước"
    assert fmt_ago(12, "en") == "12 s ago"
    assert fmt_duration(300, "vi") == "5 phút"
    assert fmt_duration(3.5 * 3600, "en") == "3.5 h"
    assert fmt_duration(3 * 86400, "vi") == "3,0 ngày"


def test_every_message_and_kpi_has_both_languages() -> None:
    for key, entry in MESSAGES.items():
        assert set(entry) == {"vi", "en"}, key
        assert entry["vi"] and entry["en"], key
    for spec in SPECS:
        assert f"kpi.{spec.key}" in MESSAGES
        assert t(f"kpi.{spec.key}", "vi") != f"kpi.{spec.key}"
    assert t("wall.unavailable", "vi", time="10:05").startswith("Không có dữ liệu từ 10:05")
    assert t("no.such.key", "en") == "no.such.key"


def test_enum_labels_cover_the_contract_values() -> None:
    from typing import get_args

    from ioc.core.contracts import dossiers, feedback, payments

    names = {
        "ProcedureField": dossiers,
        "DossierChannel": dossiers,
        "PaymentChannel": payments,
        "FeedbackCategory": feedback,
        "FeedbackChannel": feedback,
        "Urgency": feedback,
    }
    checked = 0
    for alias, module in names.items():
        for value in get_args(getattr(module, alias)):
            assert value in ENUM_LABELS, value
            checked += 1
    assert checked >= 25
    assert enum_label("land", "vi") == "Đất đai"
    assert enum_label("unheard_of", "en") == "unheard_of"
    assert lang_of("en") == "en" and lang_of(None) == "vi" and lang_of("fr") == "vi"
