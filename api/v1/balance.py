"""A license's balance and lifetime totals: GET /licenses/{id}/balance, the dashboard's
figures (LicenseBalance): the balance bridge over the license's life, one field per
movement (billing.ledger.kinds), which add up to the balance; the balance split into paid
and promotional credit with what expires next (billing.credits)."""

import uuid
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field, create_model

from api.v1.auth import request_license
from api.v1.errors import ERRORS
from api.v1.formats import MONEY_PATTERN, money
from billing.credits.selectors import credit_balances_get
from billing.ledger.bridge import bridge_lifetime
from billing.ledger.kinds import MOVEMENTS, Movement
from billing.ledger.selectors import balance_get
from usage.selectors import sync_state_get

router = Router()

# The bridge as the API states it, from the movements' terms and signs.
BRIDGE_WORDS = "balance = " + " ".join(
    f"{'+' if m.sign > 0 else '−'} {m.term}" if i else m.term for i, m in enumerate(MOVEMENTS)
)


class NextExpiryOut(Schema):
    amount: str = Field(
        pattern=MONEY_PATTERN,
        examples=["12.345678"],
        description="what is left of the promotional credit due to expire first",
    )
    at: datetime = Field(
        description="when it leaves the balance, in the license's timezone (a grant given "
        "until a day expires at the local midnight after it)"
    )


class BalanceFields(Schema):
    license_id: uuid.UUID
    currency: Literal["USD"] = "USD"
    balance: str = Field(
        pattern=MONEY_PATTERN, examples=["12.345678"], description=f"exactly: {BRIDGE_WORDS}"
    )
    total_purchased: str = Field(
        pattern=MONEY_PATTERN,
        examples=["12.345678"],
        description="every purchase, gross of refunds to the card (the same as `purchases`; "
        "formerly net of them): net = total_purchased − purchase_refunds",
    )
    total_spent: str = Field(
        pattern=MONEY_PATTERN, examples=["12.345678"], description="the same as `usage`"
    )
    total_refunded: str = Field(
        pattern=MONEY_PATTERN,
        examples=["12.345678"],
        description="refunds of usage charges only (the same as `usage_refunds`); goodwill is "
        "in `credits`, refunds to the card in `purchase_refunds`",
    )
    paid: str = Field(
        pattern=MONEY_PATTERN,
        examples=["12.345678"],
        description="the paid credit in the balance (what is left of purchases); "
        "paid + promotional = balance when the balance is positive, both 0 otherwise",
    )
    promotional: str = Field(
        pattern=MONEY_PATTERN,
        examples=["12.345678"],
        description="the promotional credit in the balance (goodwill, promotions), used first",
    )
    next_expiry: NextExpiryOut | None = Field(
        description="the credit that expires next and when; null when none is due to"
    )
    api_calls: int = Field(description="API calls, however many services each was charged for")
    input_tokens: int
    cached_tokens: int
    completion_tokens: int
    tokens: int
    images: int
    transactions: int = Field(
        description="ledger lines (a call charged for two services is two; the dashboard's "
        "Total Transactions); formerly each call once"
    )
    updated_at: datetime
    # When the balance was read, and the usage in it known current up to then (pushed or
    # pulled: the dashboard's "Last Updated"; null before any usage came in).
    as_of: datetime
    usage_as_of: datetime | None


def _term(movement: Movement) -> Any:
    effect = "adds to" if movement.sign > 0 else "takes from"
    return (
        str,
        Field(
            pattern=MONEY_PATTERN,
            examples=["12.345678"],
            description=f"lifetime {movement.total_label}: the {movement.label} entries "
            f"(movement `{movement.name}`); {effect} the balance; ≥ 0",
        ),
    )


# One field per movement of the bridge, named by its term, in the bridge's order.
BalanceOut = create_model(
    "BalanceOut", __base__=BalanceFields, **{m.term: _term(m) for m in MOVEMENTS}
)


@router.get(
    "/licenses/{license_id}/balance",
    response={200: BalanceOut, **ERRORS},
    summary="Balance and lifetime totals (the dashboard's figures)",
    description=f"The balance bridge over the license's life, exact to the micro-dollar: "
    f"{BRIDGE_WORDS}. The balance splits into paid and promotional credit; promotional "
    "credit is used first, the soonest to expire first, then paid credit.",
    operation_id="api_v1_balance",
)
def balance(request: HttpRequest, license_id: uuid.UUID) -> dict[str, Any]:
    license = request_license(request, license_id)
    as_of = timezone.now()
    totals = balance_get(license)
    bridge = bridge_lifetime(totals)
    credit = credit_balances_get(license)
    expiry = credit.next_expiry
    return {
        "license_id": license.public_id,
        "balance": money(bridge.closing),
        **{movement.term: money(amount) for movement, amount in bridge.terms()},
        "total_purchased": money(totals.total_purchased),
        "total_spent": money(totals.total_spent),
        "total_refunded": money(totals.total_refunded),
        "paid": money(credit.paid),
        "promotional": money(credit.promotional),
        "next_expiry": None
        if expiry is None
        else {"amount": money(expiry.amount), "at": expiry.at.astimezone(license.tzinfo)},
        "api_calls": totals.api_calls,
        "input_tokens": totals.input_tokens,
        "cached_tokens": totals.cached_tokens,
        "completion_tokens": totals.completion_tokens,
        "tokens": totals.tokens,
        "images": totals.images,
        "transactions": totals.entries,
        "updated_at": totals.updated_at,
        "as_of": as_of,
        "usage_as_of": sync_state_get(license).known_current_at,
    }
