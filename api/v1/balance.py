"""A license's balance and lifetime totals: GET /licenses/{id}/balance, the dashboard's
figures (LicenseBalance)."""

import uuid
from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema

from api.v1.auth import request_license
from api.v1.errors import ERRORS
from api.v1.formats import Money, money
from billing.ledger.selectors import balance_get
from usage.selectors import sync_state_get

router = Router()


class BalanceOut(Schema):
    license_id: uuid.UUID
    currency: Literal["USD"] = "USD"
    balance: str = Money
    total_purchased: str = Money
    total_spent: str = Money
    total_refunded: str = Money
    api_calls: int
    input_tokens: int
    cached_tokens: int
    completion_tokens: int
    tokens: int
    images: int
    transactions: int
    updated_at: datetime
    # When the balance was read, and the usage in it known current up to then (pushed or
    # pulled: the dashboard's "Last Updated"; null before any usage came in).
    as_of: datetime
    usage_as_of: datetime | None


@router.get(
    "/licenses/{license_id}/balance",
    response={200: BalanceOut, **ERRORS},
    summary="Balance and lifetime totals (the dashboard's figures)",
    operation_id="api_v1_balance",
)
def balance(request: HttpRequest, license_id: uuid.UUID) -> dict[str, Any]:
    license = request_license(request, license_id)
    as_of = timezone.now()
    totals = balance_get(license)
    return {
        "license_id": license.public_id,
        "balance": money(totals.balance),
        "total_purchased": money(totals.total_purchased),
        "total_spent": money(totals.total_spent),
        "total_refunded": money(totals.total_refunded),
        "api_calls": totals.api_calls,
        "input_tokens": totals.input_tokens,
        "cached_tokens": totals.cached_tokens,
        "completion_tokens": totals.completion_tokens,
        "tokens": totals.tokens,
        "images": totals.images,
        "transactions": totals.total_transactions,
        "updated_at": totals.updated_at,
        "as_of": as_of,
        "usage_as_of": sync_state_get(license).known_current_at,
    }
