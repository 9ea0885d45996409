"""Access control: who is asking (a user of a role, or a wall display) and what they may do -
the permission of each role and the wards a principal may see."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

Role = Literal["operator", "manager", "admin"]
Kind = Literal["user", "display", "open"]
Permission = Literal["view", "wall", "ack", "ward", "export", "users"]

ROLES: Final[tuple[Role, ...]] = ("operator", "manager", "admin")
# operator: the wall and its alerts; manager: ward pages and exports (the wall too, scoped);
# admin: everything, city-wide. A display token only shows the wall.
ROLE_PERMISSIONS: Final[dict[str, frozenset[Permission]]] = {
    "operator": frozenset({"view", "wall", "ack"}),
    "manager": frozenset({"view", "wall", "ward", "export"}),
    "admin": frozenset({"view", "wall", "ack", "ward", "export", "users"}),
    "display": frozenset({"view", "wall"}),
}
NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
WARD_RE: Final = re.compile(r"^[0-9]{5}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated caller; `wards` None means the whole city."""

    name: str
    role: str  # a Role, or "display" for a wall-display token
    kind: Kind = "user"
    wards: frozenset[str] | None = None

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def sees(self, ward: object) -> bool:
        """Whether this principal may see data of `ward` (any value; only codes can match)."""
        if not isinstance(ward, str):
            return False
        return self.wards is None or ward in self.wards

    def scope(self, all_wards: Sequence[str]) -> list[str]:
        """The wards of the pack this principal may see, in the pack's order."""
        return [w for w in all_wards if self.sees(w)]

    @property
    def city_wide(self) -> bool:
        return self.wards is None


# The dashboard built with auth off (the one-command demo): everything, city-wide.
OPEN: Final = Principal("demo", "admin", "open", None)


def check_name(name: str, what: str = "user name") -> str:
    """A user or token name: lower-case letters, digits, '.', '_', '-' (1-64); else ValueError."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(
            f"bad {what}: use 1-64 lower-case letters, digits, '.', '_' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> Role:
    for r in ROLES:
        if role == r:
            return r
    raise ValueError(f"bad role {role[:40]!r}: one of {', '.join(ROLES)}")


def check_wards(codes: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """Ward codes, each a code of the city pack, without repeats; else ValueError."""
    valid = set(known)
    out: list[str] = []
    for raw in codes:
        code = raw.strip()
        if not WARD_RE.match(code) or code not in valid:
            raise ValueError(f"unknown ward code {code[:20]!r} (see `ioc citypack list`)")
        if code not in out:
            out.append(code)
    if not out:
        raise ValueError("give at least one ward code, or --city for the whole city")
    return tuple(out)
