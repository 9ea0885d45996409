"""Callback step of the ward page (/ward/<code>): placeholder until the page is built."""

from __future__ import annotations

from typing import Any

from dash import Dash, html

from layouts.data import DataSource
from layouts.i18n import Lang


def layout(data: DataSource, code: str, lang: Lang) -> Any:
    return html.Div(code)


def register(app: Dash, data: DataSource) -> None:
    return None
