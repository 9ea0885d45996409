"""Contract step of the dossiers feed (ioc.dossiers.v1): one administrative-procedure case event."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Final, Literal, get_args

from ioc.core.contracts.base import (
    MAX_AMOUNT_VND,
    AwareDatetime,
    EventBase,
    Rejected,
    WardIndex,
    check_id,
    check_order,
    check_ward,
)
from ioc.core.feeds import DOSSIERS

DossierKind = Literal[
    "received",
    "supplement_requested",
    "supplement_received",
    "processing",
    "resolved",
    "returned",
    "withdrawn",
    "rejected",
]
ProcedureField = Literal[
    "land",
    "civil_status",
    "certification",
    "construction",
    "business_registration",
    "labour_social",
    "justice",
]
DossierChannel = Literal["counter", "online", "postal"]
ServiceLevel = Literal["full_online", "partial_online", "offline"]
DossierOutcome = Literal["early", "on_time", "late"]

DOSSIER_KINDS: Final[tuple[str, ...]] = get_args(DossierKind)
PROCEDURE_FIELDS: Final[tuple[str, ...]] = get_args(ProcedureField)
DOSSIER_CHANNELS: Final[tuple[str, ...]] = get_args(DossierChannel)
SERVICE_LEVELS: Final[tuple[str, ...]] = get_args(ServiceLevel)

# Vietnam has kept UTC+7 without daylight saving since 1975, so a fixed offset is exact here
# and spares a dependency on the host's tz database.
VN_TZ: Final = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


class DossierEvent(EventBase, frozen=True, kw_only=True, tag=DOSSIERS.schema):
    """A step in the life of one dossier (hồ sơ TTHC); keyed by dossier_id.

    Every event repeats the case's static fields so that any one of them can create the case.
    """

    dossier_id: str
    ward_code: str
    kind: DossierKind
    procedure_field: ProcedureField
    channel: DossierChannel
    service_level: ServiceLevel
    received_at: AwareDatetime
    due_at: AwareDatetime
    digitized: bool
    e_signed: bool
    fee_vnd: int


def check_dossier(ev: DossierEvent, wards: WardIndex) -> None:
    """Value rules a single dossier event must satisfy; raises Rejected."""
    check_id("dossier_id", ev.dossier_id)
    if ev.fee_vnd < 0:
        raise Rejected("negative_value", f"fee_vnd {ev.fee_vnd} is negative")
    if ev.fee_vnd > MAX_AMOUNT_VND:
        raise Rejected("absurd_value", f"fee_vnd {ev.fee_vnd} exceeds {MAX_AMOUNT_VND}")
    check_order("received_at", ev.received_at, "due_at", ev.due_at)
    if ev.e_signed and ev.kind not in ("resolved", "returned"):
        raise Rejected("bad_value", f"e_signed is true on a {ev.kind!r} event")
    check_ward(ev.ward_code, wards)


def dossier_outcome(resolved_at: datetime, due_at: datetime) -> DossierOutcome:
    """Early: resolved on a calendar day (Vietnam time) before the due day; else on time or late."""
    if resolved_at.astimezone(VN_TZ).date() < due_at.astimezone(VN_TZ).date():
        return "early"
    return "on_time" if resolved_at <= due_at else "late"
