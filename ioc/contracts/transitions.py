"""Contract step for case feeds: which kind of event may follow which (read by the consumers).

A case (dossier or feedback report) is in the state named by the kind of its latest event, by
event_time. An event newer than that state must be an allowed successor, otherwise the consumer
rejects it as `impossible_transition`. An event older than the case's state (it arrived late) is
kept as history and changes nothing, so it is not checked; the first event seen of a case may be
of any kind, because events carry the case's static fields and may arrive out of order.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

_DOSSIER_OPEN: Final = frozenset(
    {"received", "supplement_requested", "supplement_received", "processing"}
)
# Anything may happen to an open dossier except being received again or handing back a result
# that was never produced.
_DOSSIER_FROM_OPEN: Final = frozenset(
    {
        "supplement_requested",
        "supplement_received",
        "processing",
        "resolved",
        "withdrawn",
        "rejected",
    }
)
DOSSIER_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        **dict.fromkeys(_DOSSIER_OPEN, _DOSSIER_FROM_OPEN),
        "resolved": frozenset({"returned"}),
        "returned": frozenset(),
        "withdrawn": frozenset(),
        "rejected": frozenset(),
    }
)

FEEDBACK_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "submitted": frozenset({"assigned", "resolved", "rejected"}),
        "assigned": frozenset({"assigned", "resolved", "rejected"}),
        # The citizen rates how the report was closed, once.
        "resolved": frozenset({"rated"}),
        "rejected": frozenset({"rated"}),
        "rated": frozenset(),
    }
)

TRANSITIONS: Final[Mapping[str, Mapping[str, frozenset[str]]]] = MappingProxyType(
    {"ioc.dossiers.v1": DOSSIER_TRANSITIONS, "ioc.feedback.v1": FEEDBACK_TRANSITIONS}
)


def is_allowed_transition(schema: str, current: str | None, following: str) -> bool:
    """Whether a case in state `current` (None: not seen yet) may take an event `following`."""
    if current is None:
        return True
    return following in TRANSITIONS[schema][current]
