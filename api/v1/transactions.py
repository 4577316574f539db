"""Transactions: GET /licenses/{id}/transactions (keyset pages, the All transactions
page's filters and search) and /licenses/{id}/transactions/{id}; one line per API call
(billing.history.transactions)."""

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import CURSOR_PATTERN, MAX_PAGE, TEXT_PATTERN, LocalDay, Money, money
from billing.history.transactions import (
    Cursor,
    Transaction,
    TransactionFilter,
    transaction_get,
    transactions_page,
    transactions_search,
)
from billing.models import LedgerEntry, Service

router = Router()


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


@router.get(
    "/licenses/{license_id}/transactions",
    response={200: TransactionPageOut, **ERRORS},
    summary="Transactions, newest first, one page at a time (filtered as All transactions)",
    operation_id="api_v1_transactions",
)
def transactions(
    request: HttpRequest,
    license_id: uuid.UUID,
    limit: int = Query(50, ge=1, le=MAX_PAGE, description="transactions per page"),
    cursor: str | None = Query(
        None, pattern=CURSOR_PATTERN, description="next_cursor of the page before"
    ),
    date_from: LocalDay | None = Query(None, alias="from", description="first local day"),
    date_to: LocalDay | None = Query(
        None, alias="to", description="last local day ('from' after 'to': an empty range)"
    ),
    type: LedgerEntry.Kind | None = Query(None, description="purchase, usage, refund or credit"),
    service: Service | None = None,
    endpoint: str = Query(
        "",
        max_length=200,
        pattern=TEXT_PATTERN,
        description="a call's upstream endpoint, exactly",
    ),
    status: str = Query(
        "", max_length=32, pattern=TEXT_PATTERN, description="a call's status, exactly"
    ),
    q: str = Query(
        "",
        max_length=200,
        pattern=TEXT_PATTERN,
        description="an entry id, upstream record id or request id, exactly; "
        "the other filters and the cursor do not apply to a search",
    ),
) -> dict[str, Any]:
    """The All transactions page's list (billing.history.transactions): one line per API call."""
    license = request_license(request, license_id)
    if q.strip():
        found = transactions_search(license, q)
        return {
            "data": [_transaction_out(t) for t in found],
            "has_more": False,
            "next_cursor": None,
        }
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
        raise ApiError(
            400, "invalid_cursor", "The cursor is not one this API gave out.", field="cursor"
        ) from exc
    page = transactions_page(license, flt, before=before, size=limit)
    return {
        "data": [_transaction_out(t) for t in page.transactions],
        "has_more": page.older is not None,
        "next_cursor": str(page.older) if page.older is not None else None,
    }


@router.get(
    "/licenses/{license_id}/transactions/{transaction_id}",
    response={200: TransactionOut, **ERRORS},
    summary="One transaction (any of its entries' ids finds it)",
    operation_id="api_v1_transaction_detail",
)
def transaction_detail(
    request: HttpRequest,
    license_id: uuid.UUID,
    transaction_id: int = Path(..., ge=1, le=2**63 - 1, description="any of its entries' ids"),
) -> dict[str, Any]:
    license = request_license(request, license_id)
    tx = transaction_get(license, transaction_id)
    if tx is None:
        raise ApiError(404, "not_found", "No such transaction.")
    return _transaction_out(tx)
