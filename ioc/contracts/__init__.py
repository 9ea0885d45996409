"""Contract step of the data path: the typed events every feed carries, written once.

Simulators build these structs and `encode_event` them; consumers `decode_event` the bytes,
which parses, type-checks and validates, raising `Rejected(reason, detail)` for bad messages.
"""

from ioc.contracts.air_quality import ABSURD_LIMITS, POLLUTANTS, AirQualityEvent
from ioc.contracts.base import (
    FUTURE_TOLERANCE,
    MAX_AMOUNT_VND,
    MAX_EVENT_ID_CHARS,
    MAX_MESSAGE_BYTES,
    REASONS,
    AwareDatetime,
    Rejected,
    WardIndex,
)
from ioc.contracts.decode import SCHEMAS, Event, decode_event, encode_event, schema_of
from ioc.contracts.dossiers import (
    DOSSIER_CHANNELS,
    DOSSIER_KINDS,
    PROCEDURE_FIELDS,
    SERVICE_LEVELS,
    VN_TZ,
    DossierEvent,
    DossierOutcome,
    dossier_outcome,
)
from ioc.contracts.feedback import (
    FEEDBACK_CATEGORIES,
    FEEDBACK_CHANNELS,
    FEEDBACK_KINDS,
    URGENCIES,
    FeedbackEvent,
)
from ioc.contracts.payments import (
    MERCHANT_TYPES,
    PAYMENT_CHANNELS,
    PAYMENT_STATUSES,
    PUBLIC_COUNTER_TYPES,
    PaymentEvent,
    is_cashless,
)
from ioc.contracts.transitions import (
    DOSSIER_TRANSITIONS,
    FEEDBACK_TRANSITIONS,
    TRANSITIONS,
    is_allowed_transition,
)

__all__ = [
    "ABSURD_LIMITS",
    "DOSSIER_CHANNELS",
    "DOSSIER_KINDS",
    "DOSSIER_TRANSITIONS",
    "FEEDBACK_CATEGORIES",
    "FEEDBACK_CHANNELS",
    "FEEDBACK_KINDS",
    "FEEDBACK_TRANSITIONS",
    "FUTURE_TOLERANCE",
    "MAX_AMOUNT_VND",
    "MAX_EVENT_ID_CHARS",
    "MAX_MESSAGE_BYTES",
    "MERCHANT_TYPES",
    "PAYMENT_CHANNELS",
    "PAYMENT_STATUSES",
    "POLLUTANTS",
    "PROCEDURE_FIELDS",
    "PUBLIC_COUNTER_TYPES",
    "REASONS",
    "SCHEMAS",
    "SERVICE_LEVELS",
    "TRANSITIONS",
    "URGENCIES",
    "VN_TZ",
    "AirQualityEvent",
    "AwareDatetime",
    "DossierEvent",
    "DossierOutcome",
    "Event",
    "FeedbackEvent",
    "PaymentEvent",
    "Rejected",
    "WardIndex",
    "decode_event",
    "dossier_outcome",
    "encode_event",
    "is_allowed_transition",
    "is_cashless",
    "schema_of",
]
