"""A month's statement: GET /licenses/{id}/statements/{YYYY-MM}, the statement page's
figures (billing.statements), which the reconciliation holds against the ledger."""

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import Money, money
from billing.statements.selectors import statement_get

router = Router()


class StatementOut(Schema):
    """The dashboard's statement of the month, the billing team's reconciliation figures:
    opening + purchases + credits + refunds − usage = closing."""

    license_id: uuid.UUID
    month: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}$", examples=["2025-06"])
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
    operation_id="api_v1_statement",
)
def statement(request: HttpRequest, license_id: uuid.UUID, month: str) -> dict[str, Any]:
    license = request_license(request, license_id)
    try:
        first = datetime.strptime(month, "%Y-%m").date()  # noqa: DTZ007 - a month, no time
    except ValueError as exc:
        raise ApiError(400, "invalid_request", "Write the month as YYYY-MM, e.g. 2025-06.") from exc
    this_month = timezone.now().astimezone(license.tzinfo).date().replace(day=1)
    if first > this_month:
        raise ApiError(400, "invalid_request", "That month has not begun.")
    if first.year < 1970:
        raise ApiError(400, "invalid_request", "Choose a month from 1970 on.")
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
