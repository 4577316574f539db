"""A month's statement: GET /licenses/{id}/statements/{YYYY-MM}, the statement page's
figures (billing.statements), which the reconciliation holds against the ledger."""

import uuid
from datetime import date
from typing import Any

from django.http import HttpRequest
from ninja import Path, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import MONTH_PATTERN, Money, money
from billing.statements.selectors import statement_get

router = Router()


class StatementOut(Schema):
    """The dashboard's statement of the month, the billing team's reconciliation figures:
    opening + purchases + credits + refunds − usage = closing."""

    license_id: uuid.UUID
    month: str = Field(pattern=MONTH_PATTERN, examples=["2025-06"])
    timezone: str
    opening_balance: str = Money
    purchases: str = Money
    credits: str = Money
    usage: str = Money
    refunds: str = Money
    closing_balance: str = Money
    transactions: int
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
    return {
        "license_id": license.public_id,
        "month": f"{first:%Y-%m}",
        "timezone": license.timezone,
        "opening_balance": money(f.opening),
        "purchases": money(f.purchases),
        "credits": money(f.credits),
        "usage": money(f.usage),
        "refunds": money(f.refunds),
        "closing_balance": money(f.closing),
        "transactions": f.entries,
        "to_date": statement.to_date,
    }
