"""Table step: which database an entry point talks to, from settings or the local services."""

from __future__ import annotations

from typing import Literal

from ioc.settings import Settings

Role = Literal["admin", "writer", "reader"]


class NoDatabaseError(Exception):
    """Neither IOC_DATABASE_URL nor a running local service says where the database is."""


def database_url(settings: Settings, role: Role = "admin") -> str:
    """IOC_DATABASE_URL when set (for every role), else the role's URL from `ioc services up`."""
    if settings.database_url:
        return settings.database_url
    # Imported here so that a deployment with IOC_DATABASE_URL never touches local service state.
    from ioc.services.state import read_connection_info

    info = read_connection_info(settings.data_dir)
    url = {"admin": info.admin_url, "writer": info.writer_url, "reader": info.reader_url}[role]
    if not url:
        raise NoDatabaseError(
            "no database: set IOC_DATABASE_URL or start the local one with `ioc services up`"
        )
    return url
