"""A license's transactions for programs (the API): newest first, keyset-paged on the
index ledger_license_recent (license, -occurred_at, -id), so a page costs the same at the
start of the history or ten million entries in, and a cursor stays valid while new
entries arrive (they sort before it)."""

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from accounts.models import License
from billing.models import LedgerEntry

MAX_PAGE = 200


@dataclass(frozen=True)
class TransactionPage:
    entries: list[LedgerEntry]
    next_cursor: str | None


def cursor_encode(entry: LedgerEntry) -> str:
    raw = f"{entry.occurred_at.isoformat()}|{entry.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """(occurred_at, id) of the last entry of the previous page, or ValueError."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, entry_id = raw.partition("|")
        at = datetime.fromisoformat(moment)
        pk = int(entry_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("The cursor is not one this API gave out.") from exc
    if at.tzinfo is None or pk < 1:
        raise ValueError("The cursor is not one this API gave out.")
    return at, pk


def transactions_page(
    *,
    license: License,
    limit: int = 50,
    cursor: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TransactionPage:
    """One page of entries newest first, within [start, end) when given."""
    limit = max(1, min(limit, MAX_PAGE))
    qs = LedgerEntry.objects.for_license(license)
    if start is not None:
        qs = qs.filter(occurred_at__gte=start)
    if end is not None:
        qs = qs.filter(occurred_at__lt=end)
    if cursor:
        at, pk = cursor_decode(cursor)
        # occurred_at <= at bounds the index scan; the exclusion skips the rows of that
        # exact moment already sent.
        qs = qs.filter(occurred_at__lte=at).exclude(occurred_at=at, id__gte=pk)
    rows = list(qs.order_by("-occurred_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return TransactionPage(rows, cursor_encode(rows[-1]) if more else None)


def transaction_get(*, license: License, entry_id: int) -> LedgerEntry | None:
    """One of the license's entries; None for an id it does not own (the caller's 404)."""
    return LedgerEntry.objects.for_license(license).filter(pk=entry_id).first()
