"""What each part of the app registers: its server callbacks, each with who may call it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from dash import Dash

from ioc.core.auth.principals import ROLE_PERMISSIONS, Permission

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Registered:
    """Server callbacks by Dash's callback-map key (what a request's `output` names), each with
    the permission its caller needs; the roles holding it may call it (see roles)."""

    permissions: Mapping[str, Permission]

    def __or__(self, other: Registered) -> Registered:
        return Registered({**self.permissions, **other.permissions})

    def roles(self, key: str) -> frozenset[str]:
        """The roles (and 'display', a wall screen's token) that may call callback `key`."""
        needed = self.permissions[key]
        return frozenset(r for r, held in ROLE_PERMISSIONS.items() if needed in held)


def callback(app: Dash, *dependencies: Any, **options: Any) -> Callable[[F], F]:
    """app.callback with its type kept: the function comes back as itself (Dash's decorator is
    untyped), to be named in registered()."""
    decorate = app.callback(*dependencies, **options)

    def register(func: F) -> F:
        decorate(func)
        return func

    return register


def registered(app: Dash, permissions: Mapping[Callable[..., Any], Permission]) -> Registered:
    """The callbacks just registered on `app` by their functions, under Dash's keys. Dash files
    each function wrapped (functools.wraps) under a key it builds from the outputs, so each is
    found by the function it wraps rather than by rebuilding Dash's key format here."""
    found: dict[str, Permission] = {}
    for key, spec in app.callback_map.items():
        wrapped = getattr(spec.get("callback"), "__wrapped__", None)
        if wrapped is not None and wrapped in permissions:
            found[key] = permissions[wrapped]
    if len(found) != len(permissions):
        raise RuntimeError("a callback given a permission is not registered on this app")
    return Registered(found)
