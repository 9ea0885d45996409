"""The shape of a connection factory, shared by every floor that opens database connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

# Opens a new autocommit connection whose search_path is the schema to use (ioc.app.connect
# builds them from settings; ingest, replay, rebuild and the dashboard only call them).
Connect = Callable[[], psycopg.Connection[Any]]
