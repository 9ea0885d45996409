"""Checks of the wall's request inputs, which are whatever the request body says."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from werkzeug.exceptions import BadRequest

from ioc.core.auth.principals import Principal
from ioc.core.queries.alerts import AlertRef
from layouts.kpis import BY_KEY


def ack_target(button: object, who: Principal, wards: Collection[str]) -> AlertRef | None:
    """The alert an acknowledge button's (possibly forged) id names, if `who` may acknowledge
    it: a ward's alert only in `who`'s scope; None for anything else."""
    if not isinstance(button, Mapping):
        return None
    alert = AlertRef.named(button.get("kind"), button.get("subject"), wards)
    if alert is None or (alert.ward is not None and not who.sees(alert.ward)):
        return None
    return alert


def selected_kpi(selected: object, default: str) -> str:
    """The KPI a (possibly forged) selection store names, or the default."""
    kpi = selected.get("kpi") if isinstance(selected, Mapping) else None
    return kpi if isinstance(kpi, str) and kpi in BY_KEY else default


def rotation_state(state: object, default: str) -> dict[str, Any]:
    """The rotation store with a known KPI and a numeric (or no) pause time."""
    paused = state.get("paused_at") if isinstance(state, Mapping) else None
    at: float | None = None
    if isinstance(paused, int | float) and not isinstance(paused, bool) and paused == paused:
        at = float(paused)
    return {"kpi": selected_kpi(state, default), "paused_at": at}


def tile_keys(outputs: Any) -> list[str]:
    """The KPI of each tile output the request lists; BadRequest for anything else."""
    try:
        keys = [o["id"]["kpi"] for o in outputs]
    except (KeyError, TypeError, IndexError):
        raise BadRequest("malformed tile outputs") from None
    if not all(isinstance(k, str) and k in BY_KEY for k in keys):
        raise BadRequest("unknown tile")
    return keys


def clicked_ward(feature: object, wards: Collection[str]) -> str | None:
    """The ward code a (possibly forged) map click names, if it is one of `wards`."""
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    code = props.get("ward_code") if isinstance(props, Mapping) else None
    return code if isinstance(code, str) and code in wards else None


def click_count(count: object) -> int:
    """The acknowledgement counter store as a bounded count (0 when forged)."""
    n = count if isinstance(count, int) and not isinstance(count, bool) else 0
    return min(max(n, 0), 1_000_000)
