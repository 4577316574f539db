"""Transactions: GET /licenses/{id}/transactions (keyset pages, the All transactions
page's filters and search) and /licenses/{id}/transactions/{id} (billing.history.transactions).
A transaction is a ledger line; an API call posts one per service it used, and is one item
with its transactions in `entries`. Each item says its movement (billing.ledger.kinds): a
refund to the card is `purchase_refund`, negative; a goodwill credit `credit`."""

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema
from pydantic import Field

from api.v1.auth import request_license
from api.v1.errors import ERRORS, ApiError
from api.v1.formats import (
    CURSOR_PATTERN,
    MAX_PAGE,
    MONEY_PATTERN,
    TEXT_PATTERN,
    LocalDay,
    Money,
    money,
)
from billing.history.transactions import (
    Cursor,
    Transaction,
    TransactionFilter,
    transaction_get,
    transactions_page,
    transactions_search,
)
from billing.history.types import TRANSACTION_TYPES
from billing.ledger.kinds import MOVEMENTS
from billing.models import LedgerEntry, Service

router = Router()

# The movements' names (billing.ledger.kinds.MOVEMENTS) and the type filter's values
# (billing.history.types.TRANSACTION_TYPES), spelled out for the OpenAPI document; held
# to their definitions when the module loads.
MovementName = Literal["purchase", "purchase_refund", "credit", "usage_refund", "usage", "expiry"]
TransactionType = Literal[
    "purchase", "purchase_refund", "credit", "usage_refund", "usage", "expiry", "refund"
]
if get_args(MovementName) != tuple(m.name for m in MOVEMENTS) or set(
    get_args(TransactionType)
) != set(TRANSACTION_TYPES):
    raise ImproperlyConfigured("api.v1.transactions: the movements' names changed")


class TransactionLineOut(Schema):
    """One ledger entry of a transaction (a call has one per service it used)."""

    id: int
    service: str
    amount: str = Money
    tokens: int
    images: int


class TransactionOut(Schema):
    """One row of All transactions: an API call (its transactions, one per service it
    used, in `entries`), or one other transaction: a purchase, a refund of a card purchase,
    a credit, a refund of a usage charge, an expiry of credit."""

    id: int = Field(description="the transaction's first entry; GET …/transactions/{id}")
    occurred_at: datetime
    movement: MovementName = Field(
        description="what it is: purchase, purchase_refund (money back to the card), credit "
        "(goodwill, promotion), usage_refund (a charge given back), usage, expiry (credit "
        "unused when it expired)"
    )
    label: str = Field(
        description="as the dashboard says it: 'Refund of card purchase #12', 'Credit', …"
    )
    kind: LedgerEntry.Kind = Field(
        description="the stored kind; 'refund' is a purchase_refund, a usage_refund or (old "
        "goodwill) a credit: read `movement`"
    )
    services: list[str]
    amount: str = Field(
        pattern=MONEY_PATTERN,
        examples=["-4.000000"],
        description="signed as it moves the balance: money in positive, money out "
        "(usage, refunds to the card, expiries) negative",
    )
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
        "movement": tx.movement.name,
        "label": tx.label,
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
    type: TransactionType | None = Query(
        None,
        description="a movement (purchase, purchase_refund, credit, usage_refund, usage, "
        "expiry), or refund for both refunds",
    ),
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
