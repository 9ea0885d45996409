"""Contract step of the payments feed (ioc.payments.v1): one payment at an acceptance point."""

from __future__ import annotations

from typing import Final, Literal, get_args

from ioc.core.contracts.base import (
    MAX_AMOUNT_VND,
    EventBase,
    Rejected,
    WardIndex,
    check_id,
    check_ward,
)
from ioc.core.feeds import PAYMENTS

MerchantType = Literal["market_stall", "shop", "public_service_fee", "utility_bill", "tax"]
PaymentChannel = Literal[
    "vietqr", "pos_card", "e_wallet", "bank_transfer", "public_gateway", "cash"
]
PaymentStatus = Literal["succeeded", "failed", "refunded"]

MERCHANT_TYPES: Final[tuple[str, ...]] = get_args(MerchantType)
PAYMENT_CHANNELS: Final[tuple[str, ...]] = get_args(PaymentChannel)
PAYMENT_STATUSES: Final[tuple[str, ...]] = get_args(PaymentStatus)
# "Public counters": where the cashless share of payments is measured.
PUBLIC_COUNTER_TYPES: Final[frozenset[str]] = frozenset({"public_service_fee", "tax"})


class PaymentEvent(EventBase, frozen=True, kw_only=True, tag=PAYMENTS.schema):
    """One payment; keyed by merchant_id so that a merchant's payments stay in order."""

    payment_id: str
    merchant_id: str
    ward_code: str
    merchant_type: MerchantType
    channel: PaymentChannel
    amount_vnd: int
    status: PaymentStatus


def is_cashless(channel: str) -> bool:
    """Every channel but cash counts as cashless."""
    return channel != "cash"


def check_payment(ev: PaymentEvent, wards: WardIndex) -> None:
    """Value rules a single payment event must satisfy; raises Rejected."""
    check_id("payment_id", ev.payment_id)
    check_id("merchant_id", ev.merchant_id)
    if ev.amount_vnd < 0:
        raise Rejected("negative_value", f"amount_vnd {ev.amount_vnd} is negative")
    if ev.amount_vnd == 0:
        raise Rejected("bad_value", "amount_vnd is 0; a payment moves a positive amount")
    if ev.amount_vnd > MAX_AMOUNT_VND:
        raise Rejected("absurd_value", f"amount_vnd {ev.amount_vnd} exceeds {MAX_AMOUNT_VND}")
    check_ward(ev.ward_code, wards)
