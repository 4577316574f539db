"""Usage over time: GET /licenses/{id}/usage, by local day or month and by service or
endpoint, through the usage explorer's selector (billing.charges.selectors)."""

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError, ErrorOut
from api.v1.formats import Money, money
from billing.charges.selectors import UsageNotReady, UsageRangeError, usage_by_period

router = Router()


class UsageBucketOut(Schema):
    period: date
    service: str | None = Field(None, description="with group_by=service")
    endpoint: str | None = Field(
        None, description="with group_by=endpoint; empty when the call recorded none"
    )
    amount: str = Money
    tokens: int
    images: int
    api_calls: int


class UsageOut(Schema):
    license_id: uuid.UUID
    timezone: str
    granularity: Literal["day", "month"]
    group_by: Literal["service", "endpoint"]
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    total: str = Money
    data: list[UsageBucketOut]


@router.get(
    "/licenses/{license_id}/usage",
    response={200: UsageOut, 409: ErrorOut, **ERRORS},
    summary="Usage by day or month and by service or endpoint",
    by_alias=True,
    operation_id="api_v1_usage",
)
def usage(
    request: HttpRequest,
    license_id: uuid.UUID,
    date_from: date | None = Query(
        None, alias="from", description="first local day (default: 29 days before 'to')"
    ),
    date_to: date | None = Query(None, alias="to", description="last local day (default: today)"),
    granularity: Literal["day", "month"] = "day",
    group_by: Literal["service", "endpoint"] = Query(
        "service", description="one bucket per service, or per endpoint (409 while not ready)"
    ),
) -> dict[str, Any]:
    license = request_license(request, license_id)
    today = timezone.now().astimezone(license.tzinfo).date()
    end = date_to or max(today, date_from or today)
    # (A day before 29 AD has no 29 days before it: the check below refuses it anyway.)
    start = date_from or (end - timedelta(days=29) if end.toordinal() > 29 else end)
    try:
        buckets = usage_by_period(
            license=license, start=start, end=end, granularity=granularity, group_by=group_by
        )
    except UsageRangeError as exc:
        raise ApiError(400, exc.code, exc.message) from exc
    except UsageNotReady as exc:
        raise ApiError(409, "not_ready", exc.message) from exc
    return {
        "license_id": license.public_id,
        "timezone": license.timezone,
        "granularity": granularity,
        "group_by": group_by,
        "from": start,
        "to": end,
        "total": money(sum((b.amount for b in buckets), Decimal(0))),
        "data": [
            {
                "period": b.period,
                group_by: b.group,
                "amount": money(b.amount),
                "tokens": b.tokens,
                "images": b.images,
                "api_calls": b.api_calls,
            }
            for b in buckets
        ],
    }
