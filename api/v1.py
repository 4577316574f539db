"""The customer API, version 1 (/api/v1/), built with django-ninja, which derives the
OpenAPI 3.1 document (/api/v1/openapi.json) from these functions and schemas.

- Auth: `Authorization: Bearer <API key>` (api.models.ApiKey, scope `read`). No key, an
  unknown, revoked or expired one: 401. A license the key does not belong to: 404, the same
  as one that does not exist (docs/invariants.md, 7). The key of a closed license: 403
  `license_closed` on every path, as its pages refuse it (License.access_refusal); a
  suspended license reads as its dashboard does, its status saying "suspended".
- Every error is `{"error": {"code": …, "message": …}}`. Limited per key to
  settings.API_RATE_LIMIT requests per API_RATE_WINDOW_SECONDS: 429 with Retry-After.
- Money is a decimal string with 6 places ("12.345678"); times are RFC 3339 in UTC; days
  and months are the license's local ones.
- One computation each: transactions are the All transactions page's
  (billing.history.transactions: one line per API call, the same filters and search), statements
  the statement page's (billing.statements.selectors → billing.statements.figures, which the
  reconciliation holds against the ledger).
- Cost: balance, usage and transactions read LicenseBalance, a bounded range of
  DailyRollup rows, or an index range of the ledger (keyset pages), whatever the length of
  the history; a statement reads the month's rollups, the balance and the month's few
  refunds without a service (as the statement page and PDF).
"""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from ninja import NinjaAPI, Query, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer
from pydantic import Field

from accounts.models import License
from api.models import ApiKey
from api.selectors import api_key_for_secret
from api.services import api_key_touch
from billing.charges.selectors import (
    LOCAL_DATE_MAX,
    LOCAL_DATE_MIN,
    UsageNotReady,
    UsageRangeError,
    usage_by_period,
)
from billing.history.export import (
    HISTORY_HEADER,
    history_csv_lines,
    history_filename,
    ledger_history_csv_pages,
)
from billing.history.transactions import (
    Cursor,
    Transaction,
    TransactionFilter,
    transaction_get,
    transactions_page,
    transactions_search,
)
from billing.ledger.selectors import balance_get
from billing.models import LedgerEntry, Service
from billing.money import quantize_money
from billing.statements.selectors import statement_get
from portal.db_router import replica_reads
from portal.ratelimit import history_export_hit, rate_limit_hit

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{6}$"
MAX_PAGE = 200


def money(value: Decimal) -> str:
    return f"{quantize_money(value):f}"


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


# --- schemas ------------------------------------------------------------------------------


class ErrorBody(Schema):
    code: str = Field(
        examples=["not_found"],
        description=(
            "invalid_request, invalid_cursor (400); unauthenticated, key_revoked, key_expired "
            "(401); license_closed (403: the license is closed, on every path); not_found "
            "(404); not_ready (409); rate_limited, export_limited (429, with Retry-After)"
        ),
    )
    message: str = Field(description="what happened and what to do, for people")


class ErrorOut(Schema):
    error: ErrorBody


ERRORS: dict[int, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    429: ErrorOut,
}

Money = Field(pattern=MONEY_PATTERN, examples=["12.345678"])


class LicenseOut(Schema):
    id: uuid.UUID
    name: str
    type: str
    status: str
    timezone: str
    member_since: date
    key_masked: str


class LicenseListOut(Schema):
    data: list[LicenseOut]


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


class TransactionLineOut(Schema):
    """One ledger entry of a transaction (a call has one per service it used)."""

    id: int
    service: str
    amount: str = Money
    tokens: int
    images: int


class TransactionOut(Schema):
    """One line of All transactions: an API call (its service charges together), or a
    purchase, refund or credit."""

    id: int = Field(description="the transaction's first entry; GET …/transactions/{id}")
    occurred_at: datetime
    kind: LedgerEntry.Kind
    services: list[str]
    amount: str = Money
    tokens: int
    images: int
    description: str
    request_id: str = Field(description="a call's upstream request id")
    record_id: str = Field(description="a call's upstream record id")
    endpoint: str = Field(description="the upstream endpoint a call used")
    status: str = Field(description="a call's status: success, error…")
    refund_of: int | None
    entries: list[TransactionLineOut]


class TransactionPageOut(Schema):
    data: list[TransactionOut]
    has_more: bool
    next_cursor: str | None


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


# --- auth, errors -------------------------------------------------------------------------


class ApiKeyAuth(HttpBearer):
    openapi_description = "An API key made in the portal (API keys page): tcp_…"

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_for_secret(token)
        if key is None:
            raise ApiError(401, "unauthenticated", "The API key is not valid.")
        if key.revoked_at is not None:
            raise ApiError(401, "key_revoked", f"The API key {key.display} was revoked.")
        if not key.is_usable():
            raise ApiError(401, "key_expired", f"The API key {key.display} has expired.")
        # What the license's pages refuse, its API refuses, on every path (accounts.models).
        refusal = key.license.access_refusal()
        if refusal is not None:
            raise ApiError(403, refusal.code, refusal.message)
        decision = rate_limit_hit(
            key=f"api:{key.pk}",
            limit=settings.API_RATE_LIMIT,
            window_seconds=settings.API_RATE_WINDOW_SECONDS,
        )
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                f"Requests are limited to {settings.API_RATE_LIMIT} per "
                f"{settings.API_RATE_WINDOW_SECONDS} seconds per key; retry in "
                f"{decision.retry_after_seconds} s.",
                retry_after=decision.retry_after_seconds,
            )
        api_key_touch(key=key)
        return key


api = NinjaAPI(
    title="Token & Credit Portal API",
    version="1.0.0",
    description=(
        "Read a license's balance, usage, transactions and statements. Money is a decimal "
        "string with 6 places; times are RFC 3339; days and months are the license's own. "
        "The key of a closed license is refused on every path (403, code license_closed); "
        "a suspended license still reads, as its dashboard does, and its status says so."
    ),
    urls_namespace="api",
    auth=ApiKeyAuth(),
    docs_url=None,
    openapi_url="/openapi.json",
)
# Every operation only reads: from the replica when there is one (portal.db_router). The
# key is checked on the primary (api's tables are not replica data), so a revoked key fails
# at once.
api.add_decorator(replica_reads, mode="view")


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(
        request, {"error": {"code": code, "message": message}}, status=status
    )


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    response = _error(request, exc.status, exc.code, exc.message)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
    response = _error(
        request, 401, "unauthenticated", "Send an API key: Authorization: Bearer <key>."
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
    return _error(request, 400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = "not_found" if exc.status_code == 404 else "invalid_request"
    return _error(request, exc.status_code, code, str(exc))


def _license(request: HttpRequest, license_id: uuid.UUID) -> License:
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    if key.license.public_id != license_id or ApiKey.Scope.READ not in key.scopes:
        raise ApiError(404, "not_found", "No such license.")
    return key.license


def _check_dates(date_from: date | None, date_to: date | None) -> None:
    for value in (date_from, date_to):
        if value is not None and not LOCAL_DATE_MIN <= value <= LOCAL_DATE_MAX:
            raise ApiError(
                400, "invalid_request", f"Dates lie between {LOCAL_DATE_MIN} and {LOCAL_DATE_MAX}."
            )
    if date_from and date_to and date_from > date_to:
        raise ApiError(400, "invalid_request", "'from' is after 'to'.")


# --- endpoints ----------------------------------------------------------------------------


def _license_out(license: License) -> dict[str, Any]:
    return {
        "id": license.public_id,
        "name": license.name,
        "type": license.license_type,
        "status": license.status,
        "timezone": license.timezone,
        "member_since": license.member_since,
        "key_masked": license.masked_key,
    }


@api.get("/licenses", response={200: LicenseListOut, **ERRORS}, summary="Licenses this key reads")
def licenses_list(request: HttpRequest) -> dict[str, Any]:
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    return {"data": [_license_out(key.license)]}


@api.get("/licenses/{license_id}", response={200: LicenseOut, **ERRORS}, summary="The license")
def license_detail(request: HttpRequest, license_id: uuid.UUID) -> dict[str, Any]:
    return _license_out(_license(request, license_id))


@api.get(
    "/licenses/{license_id}/balance",
    response={200: BalanceOut, **ERRORS},
    summary="Balance and lifetime totals (the dashboard's figures)",
)
def balance(request: HttpRequest, license_id: uuid.UUID) -> dict[str, Any]:
    license = _license(request, license_id)
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
    }


@api.get(
    "/licenses/{license_id}/usage",
    response={200: UsageOut, 409: ErrorOut, **ERRORS},
    summary="Usage by day or month and by service or endpoint",
    by_alias=True,
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
    license = _license(request, license_id)
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


def _transaction_out(tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "occurred_at": tx.occurred_at,
        "kind": tx.kind,
        "services": tx.services,
        "amount": money(tx.amount),
        "tokens": tx.tokens,
        "images": tx.images,
        "description": tx.description,
        "request_id": tx.request_id,
        "record_id": tx.record_id,
        "endpoint": tx.endpoint,
        "status": tx.status,
        "refund_of": tx.refund_of_id,
        "entries": [
            {
                "id": line.id,
                "service": line.service,
                "amount": money(line.amount),
                "tokens": line.tokens,
                "images": line.images,
            }
            for line in tx.lines
        ],
    }


@api.get(
    "/licenses/{license_id}/transactions",
    response={200: TransactionPageOut, **ERRORS},
    summary="Transactions, newest first, one page at a time (filtered as All transactions)",
)
def transactions(
    request: HttpRequest,
    license_id: uuid.UUID,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    cursor: str | None = Query(None, max_length=200, description="next_cursor of the page before"),
    date_from: date | None = Query(None, alias="from", description="first local day"),
    date_to: date | None = Query(None, alias="to", description="last local day"),
    type: LedgerEntry.Kind | None = Query(None, description="purchase, usage, refund or credit"),
    service: Service | None = None,
    endpoint: str = Query("", max_length=200, description="a call's upstream endpoint, exactly"),
    status: str = Query("", max_length=32, description="a call's status, exactly"),
    q: str = Query(
        "",
        max_length=200,
        description="an entry id, upstream record id or request id, exactly; "
        "the other filters and the cursor do not apply to a search",
    ),
) -> dict[str, Any]:
    """The All transactions page's list (billing.history.transactions): one line per API call."""
    license = _license(request, license_id)
    if q.strip():
        found = transactions_search(license, q)
        return {
            "data": [_transaction_out(t) for t in found],
            "has_more": False,
            "next_cursor": None,
        }
    _check_dates(date_from, date_to)
    flt = TransactionFilter.for_local_dates(
        license,
        date_from=date_from,
        date_to=date_to,
        kind=type or "",
        service=service or "",
        endpoint=endpoint,
        status=status,
    )
    try:
        before = Cursor.parse(cursor) if cursor else None
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API gave out.") from exc
    page = transactions_page(license, flt, before=before, size=limit)
    return {
        "data": [_transaction_out(t) for t in page.transactions],
        "has_more": page.older is not None,
        "next_cursor": str(page.older) if page.older is not None else None,
    }


@api.get(
    "/licenses/{license_id}/transactions/{transaction_id}",
    response={200: TransactionOut, **ERRORS},
    summary="One transaction (any of its entries' ids finds it)",
)
def transaction_detail(
    request: HttpRequest, license_id: uuid.UUID, transaction_id: int
) -> dict[str, Any]:
    license = _license(request, license_id)
    tx = transaction_get(license, transaction_id) if 0 < transaction_id < 2**63 else None
    if tx is None:
        raise ApiError(404, "not_found", "No such transaction.")
    return _transaction_out(tx)


@api.get(
    "/licenses/{license_id}/statements/{month}",
    response={200: StatementOut, **ERRORS},
    summary="The statement of a month (YYYY-MM, the license's local month)",
)
def statement(request: HttpRequest, license_id: uuid.UUID, month: str) -> dict[str, Any]:
    license = _license(request, license_id)
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


@api.get(
    "/licenses/{license_id}/history.csv",
    response=ERRORS,
    summary="The transaction history as CSV (streamed), as the dashboard's Download History",
    description=(
        "Limited with the dashboard's Download History: HISTORY_CSV_RATE_LIMIT exports per "
        "key and HISTORY_CSV_LICENSE_RATE_LIMIT per license (web and API together) per "
        "HISTORY_CSV_RATE_WINDOW_SECONDS; beyond, 429 export_limited with Retry-After."
    ),
    openapi_extra={
        "responses": {
            200: {
                "description": "CSV: " + ",".join(HISTORY_HEADER),
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def history_csv(
    request: HttpRequest,
    license_id: uuid.UUID,
    date_from: date | None = Query(None, alias="from"),
    date_to: date | None = Query(None, alias="to"),
    kind: Literal["purchase", "usage", "refund", "credit"] | None = None,
) -> StreamingHttpResponse:
    license = _license(request, license_id)
    _check_dates(date_from, date_to)
    # The dashboard's Download History and this export share one limit per license, so
    # more keys buy no more exports (portal.ratelimit).
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    refusal = history_export_hit(license_id=license.pk, requester=f"key{key.pk}")
    if refusal is not None:
        raise ApiError(
            429, "export_limited", refusal.message, retry_after=refusal.retry_after_seconds
        )
    flt = TransactionFilter.for_local_dates(
        license, date_from=date_from, date_to=date_to, kind=kind or ""
    )
    response = StreamingHttpResponse(
        history_csv_lines(ledger_history_csv_pages(license, flt)),
        content_type="text/csv; charset=utf-8",
    )
    name = history_filename(timezone.now(), license.tzinfo)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
