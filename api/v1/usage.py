"""Usage over time: GET /licenses/{id}/usage, by local day or month and by service or
endpoint, through the usage explorer's selector (billing.charges.selectors), a page of at
most a year of days (or three years of months) at a time."""

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError, ErrorOut
from api.v1.formats import LocalDay, Money, money
from billing.charges.selectors import (
    LOCAL_DATE_MIN,
    USAGE_MAX_DAYS,
    UsageNotReady,
    UsageRangeError,
    usage_by_period,
)

router = Router()

Granularity = Literal["day", "month"]


class UsageBucketOut(Schema):
    period: date
    service: str | None = Field(None, description="with group_by=service")
    endpoint: str | None = Field(
        None, description="with group_by=endpoint; empty when the call recorded none"
    )
    amount: str = Money
    tokens: int
    images: int
    api_calls: int = Field(
        description="API calls, each counted once: by service, a call that made images is "
        "an ai_images call and any other an ai_data call (the services' calls add up to "
        "the calls); by endpoint, the endpoint it called"
    )
    transactions: int = Field(
        description="ledger lines posted: an API call posts one per service it used"
    )


class UsageOut(Schema):
    license_id: uuid.UUID
    timezone: str
    granularity: Granularity
    group_by: Literal["service", "endpoint"]
    date_from: date = Field(alias="from", description="the first local day this answer covers")
    date_to: date = Field(
        alias="to",
        description="the last local day this answer covers: the 'to' asked for, or the "
        "end of this page when the range is longer than one answer holds",
    )
    total: str = Money
    data: list[UsageBucketOut]
    has_more: bool = Field(description="the range asked for goes on after this page")
    next_from: date | None = Field(
        description="ask again with from=next_from (and the same 'to') for the next page"
    )


def usage_page_end(start: date, end: date, granularity: str) -> date:
    """The last local day of the page of [start, end] that begins at `start`: at most
    USAGE_MAX_DAYS of the granularity, and by month whole months, so that no month is
    split between two pages."""
    limit = USAGE_MAX_DAYS[granularity]
    if (end - start).days < limit:
        return end
    last = start + timedelta(days=limit - 1)
    if granularity == "month" and (last + timedelta(days=1)).day != 1:
        last = last.replace(day=1) - timedelta(days=1)
    return last


@router.get(
    "/licenses/{license_id}/usage",
    response={200: UsageOut, 409: ErrorOut, **ERRORS},
    summary="Usage by day or month and by service or endpoint",
    description=(
        "A range longer than one answer holds (366 days by day, 1,098 days of whole months "
        "by month) comes a page at a time: the answer's from and to say which days it "
        "covers, has_more and next_from how to ask for the rest. 'from' after 'to' is an "
        "empty range."
    ),
    by_alias=True,
    operation_id="api_v1_usage",
)
def usage(
    request: HttpRequest,
    license_id: uuid.UUID,
    date_from: LocalDay | None = Query(
        None, alias="from", description="first local day (default: 29 days before 'to')"
    ),
    date_to: LocalDay | None = Query(
        None, alias="to", description="last local day (default: today)"
    ),
    granularity: Granularity = "day",
    group_by: Literal["service", "endpoint"] = Query(
        "service", description="one bucket per service, or per endpoint (409 while not ready)"
    ),
) -> dict[str, Any]:
    license = request_license(request, license_id)
    today = license.local_date()
    end = date_to or max(today, date_from or today)
    start = date_from or max(LOCAL_DATE_MIN, end - timedelta(days=29))
    page_end = usage_page_end(start, end, granularity) if start <= end else end
    try:
        buckets = (
            usage_by_period(
                license=license,
                start=start,
                end=page_end,
                granularity=granularity,
                group_by=group_by,
            )
            if start <= end
            else []
        )
    except UsageRangeError as exc:
        raise ApiError(400, exc.code, exc.message, field=exc.field) from exc
    except UsageNotReady as exc:
        raise ApiError(409, "not_ready", exc.message) from exc
    more = page_end < end
    return {
        "license_id": license.public_id,
        "timezone": license.timezone,
        "granularity": granularity,
        "group_by": group_by,
        "from": start,
        "to": page_end,
        "total": money(sum((b.amount for b in buckets), Decimal(0))),
        "data": [
            {
                "period": b.period,
                group_by: b.group,
                "amount": money(b.amount),
                "tokens": b.tokens,
                "images": b.images,
                "api_calls": b.api_calls,
                "transactions": b.entries,
            }
            for b in buckets
        ],
        "has_more": more,
        "next_from": page_end + timedelta(days=1) if more else None,
    }
