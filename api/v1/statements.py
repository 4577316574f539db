"""A month's statement: GET /licenses/{id}/statements/{YYYY-MM}, the statement page's
figures (billing.statements), which the reconciliation holds against the ledger: the
month's bridge, each movement on its own (opening + purchases − purchase_refunds + credits
+ usage_refunds − usage − expired = closing), the calls and transactions, usage by service
and the month's credit grants."""

import uuid
from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Path, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import MONEY_PATTERN, MONTH_PATTERN, Money, money
from billing.statements.selectors import statement_get

router = Router()


class StatementServiceOut(Schema):
    service: str
    amount: str = Money
    tokens: int
    images: int
    api_calls: int = Field(
        description="API calls counted under this service: each call once, a call that "
        "made images under ai_images, any other under ai_data"
    )
    transactions: int = Field(
        description="ledger lines this service's charges posted (a call posts one per "
        "service it used)"
    )


class StatementCreditOut(Schema):
    """The month's credit by kind: paid (purchases) and promotional (credits)."""

    paid_granted: str = Money
    promotional_granted: str = Money
    paid_consumed: str = Money
    promotional_consumed: str = Money
    paid_refunded: str = Field(
        pattern=MONEY_PATTERN, description="paid credit refunded to the card"
    )
    paid_expired: str = Money
    promotional_expired: str = Money
    paid_outstanding: str = Field(
        pattern=MONEY_PATTERN, description="paid credit left at the month's end"
    )
    promotional_outstanding: str = Money


class StatementOut(Schema):
    """The dashboard's statement of the month, the billing team's reconciliation figures:
    opening_balance + purchases − purchase_refunds + credits + usage_refunds − usage −
    expired = closing_balance (each term a size, ≥ 0)."""

    license_id: uuid.UUID
    month: str = Field(pattern=MONTH_PATTERN, examples=["2025-06"])
    timezone: str
    opening_balance: str = Money
    purchases: str = Field(pattern=MONEY_PATTERN, description="card and other purchases, gross")
    purchase_refunds: str = Field(pattern=MONEY_PATTERN, description="money returned to the card")
    credits: str = Field(pattern=MONEY_PATTERN, description="goodwill and promotional credit")
    usage_refunds: str = Field(pattern=MONEY_PATTERN, description="usage charges given back")
    usage: str = Money
    expired: str = Field(pattern=MONEY_PATTERN, description="credit unused when it expired")
    refunds: str = Field(
        pattern=MONEY_PATTERN,
        description="deprecated: usage_refunds − purchase_refunds; read those two",
        json_schema_extra={"deprecated": True},
    )
    closing_balance: str = Money
    api_calls: int = Field(description="API calls made in the month")
    transactions: int = Field(
        description="ledger lines posted in the month: an API call posts one per service "
        "it used, every other movement one"
    )
    usage_by_service: list[StatementServiceOut]
    credit: StatementCreditOut
    to_date: bool = Field(description="the month is still running")


@router.get(
    "/licenses/{license_id}/statements/{month}",
    response={200: StatementOut, **ERRORS},
    summary="The statement of a month (YYYY-MM, the license's local month)",
    description="A month that has not begun has no statement yet (404).",
    operation_id="api_v1_statement",
)
def statement(
    request: HttpRequest,
    license_id: uuid.UUID,
    month: str = Path(
        ...,
        pattern=MONTH_PATTERN,
        examples=["2025-06"],
        description="the license's local month, YYYY-MM, from 1970-01 on",
    ),
) -> dict[str, Any]:
    license = request_license(request, license_id)
    first = date(int(month[:4]), int(month[5:7]), 1)
    this_month = license.local_month()
    if first > this_month:
        raise ApiError(404, "not_found", f"No statement for {month}: that month has not begun.")
    statement = statement_get(license=license, month=first)
    f = statement.figures
    g = statement.grants
    return {
        "license_id": license.public_id,
        "month": f"{first:%Y-%m}",
        "timezone": license.timezone,
        "opening_balance": money(f.opening),
        **{line.movement.term: money(line.amount) for line in statement.lines},
        "refunds": money(f.refunds),
        "closing_balance": money(f.closing),
        "api_calls": statement.api_calls,
        "transactions": f.entries,
        "usage_by_service": [
            {
                "service": s.service,
                "amount": money(s.amount),
                "tokens": s.tokens,
                "images": s.images,
                "api_calls": s.api_calls,
                "transactions": s.entries,
            }
            for s in statement.usage_by_service
        ],
        "credit": {
            "paid_granted": money(g.paid_sold),
            "promotional_granted": money(g.promotional_granted),
            "paid_consumed": money(g.paid_consumed),
            "promotional_consumed": money(g.promotional_consumed),
            "paid_refunded": money(g.paid_refunded),
            "paid_expired": money(g.paid_expired),
            "promotional_expired": money(g.promotional_expired),
            "paid_outstanding": money(g.paid_outstanding),
            "promotional_outstanding": money(g.promotional_outstanding),
        },
        "to_date": statement.to_date,
    }
