"""The ledger of one license for the staff console: newest first, a keyset page at a time,
each entry with the running balance after it, computed by the database.

The running balance of an entry is the balance now minus every entry newer than it. For a
page, PostgreSQL sums "everything newer than the page" without reading the ledger above
it: the daily rollups of the local days after the page's first day (a few rows a day),
plus that one day's entries at or above the page (an index range on
`ledger_license_recent`); a window over the page does the rest. Balance, rollups and the
page are read in one statement, so they are one snapshot and the figures agree exactly.
Cost depends on the page size and one day's entries, not on the length of the history."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS

from accounts.models import License
from billing.ledger.usage import usage_external_ids
from billing.models import LedgerEntry
from portal.plans import sql_rows_in_index_order

PAGE_SIZE = 50

_COLUMNS = (
    "id", "kind", "service", "amount", "tokens", "images", "description", "occurred_at",
    "original_occurred_at", "external_id", "refund_of_id", "reason",
)  # fmt: skip

_PAGE_SQL = """
WITH bal AS (
    SELECT coalesce((SELECT balance FROM billing_licensebalance WHERE license_id = %(lid)s), 0)
        AS balance
),
newer AS ({newer}),
page AS (
    SELECT {columns}
    FROM billing_ledgerentry
    -- A range of one license, ordered with it: the index ledger_license_recent's order
    -- (LedgerQuerySet.history_of says why).
    WHERE license_id >= %(lid)s AND license_id <= %(lid)s {before}
    ORDER BY license_id, occurred_at DESC, id DESC
    LIMIT %(limit)s
)
SELECT page.*,
       (SELECT balance FROM bal) - (SELECT amount FROM newer)
       - coalesce(sum(amount) OVER (ORDER BY occurred_at DESC, id DESC
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
FROM page
ORDER BY occurred_at DESC, id DESC
"""

NOTHING_NEWER_SQL = "SELECT 0::numeric AS amount"

# Entries at or after the cursor (occurred_at, id): the rollups of the later local days and
# the entries of the cursor's own local day from the cursor on. Also the history CSV's
# running balance (billing.history.export).
NEWER_THAN_CURSOR_SQL = """
SELECT coalesce((
           SELECT sum(r.amount) FROM billing_dailyrollup AS r
           WHERE r.license_id = %(lid)s
             AND r.day > (%(at)s::timestamptz AT TIME ZONE %(tz)s)::date), 0)
     + coalesce((
           SELECT sum(e.amount) FROM billing_ledgerentry AS e
           WHERE e.license_id = %(lid)s
             AND (e.occurred_at, e.id) >= (%(at)s::timestamptz, %(id)s::bigint)
             -- Implied by the row comparison, but PostgreSQL cannot estimate a row
             -- comparison: without the plain range it guessed a million rows at 10 M
             -- entries and scanned the table (docs/benchmarks.md, part 5).
             AND e.occurred_at >= %(at)s::timestamptz
             AND e.occurred_at < (((%(at)s::timestamptz AT TIME ZONE %(tz)s)::date + 1)
                                  ::timestamp AT TIME ZONE %(tz)s)), 0) AS amount
"""

_BEFORE_CURSOR = "AND (occurred_at, id) < (%(at)s::timestamptz, %(id)s::bigint)"


@dataclass(frozen=True)
class LedgerRow:
    id: int
    kind: str
    service: str
    amount: Decimal
    tokens: int
    images: int
    description: str
    occurred_at: datetime
    original_occurred_at: datetime | None
    external_id: str
    refund_of_id: int | None
    reason: str
    running_balance: Decimal
    refund_ids: list[int] = field(default_factory=list)  # refunds of this charge


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    # (occurred_at, id) of the last row: the cursor of the next (older) page, if any.
    next_cursor: tuple[datetime, int] | None
    found: LedgerRow | None = None  # the entry a search asked for (the page starts there)


def ledger_page(
    *, license: License, before: tuple[datetime, int] | None = None, size: int = PAGE_SIZE
) -> LedgerPage:
    """Entries strictly older than `before` (the newest when None), newest first, with the
    running balance after each. One query (two with the refunds of the page's charges)."""
    params: dict[str, Any] = {"lid": license.pk, "tz": license.timezone, "limit": size + 1}
    if before is None:
        sql = _PAGE_SQL.format(newer=NOTHING_NEWER_SQL, columns=", ".join(_COLUMNS), before="")
    else:
        params["at"], params["id"] = before
        sql = _PAGE_SQL.format(
            newer=NEWER_THAN_CURSOR_SQL, columns=", ".join(_COLUMNS), before=_BEFORE_CURSOR
        )
    records = sql_rows_in_index_order(DEFAULT_DB_ALIAS, sql, params)
    more = len(records) > size
    records = records[:size]
    charges = [r[0] for r in records if r[1] == LedgerEntry.Kind.USAGE]
    refunds: dict[int, list[int]] = {}
    if charges:
        for refund_id, charge_id in (
            LedgerEntry.objects.for_license(license)
            .filter(refund_of_id__in=charges)
            .order_by("id")
            .values_list("id", "refund_of_id")
        ):
            refunds.setdefault(charge_id, []).append(refund_id)
    rows = [
        LedgerRow(
            **dict(zip(_COLUMNS, rec[: len(_COLUMNS)], strict=True)),
            running_balance=rec[len(_COLUMNS)],
            refund_ids=refunds.get(rec[0], []),
        )
        for rec in records
    ]
    next_cursor = (rows[-1].occurred_at, rows[-1].id) if more and rows else None
    return LedgerPage(rows=rows, next_cursor=next_cursor)


def ledger_entry_find(*, license: License, term: str) -> LedgerEntry | None:
    """The entry a staff search names, most exact first: an entry id, an external id (a
    payment reference, `refund:<key>`, `<record id>:<service>`), an upstream record id (its
    first service's entry), then a request id (as written in usage descriptions, newest
    first). All but the last are probes of unique indexes."""
    term = term.strip()
    if not term:
        return None
    entries = LedgerEntry.objects.for_license(license)
    if term.lstrip("#").isdigit():
        found = entries.filter(pk=int(term.lstrip("#"))).first()
        if found is not None:
            return found
    exact = entries.filter(external_id=term).first()
    if exact is not None:
        return exact
    # An upstream record id: its entries are `<record id>:<service>`; the first posted.
    found = entries.filter(external_id__in=usage_external_ids(term)).order_by("id").first()
    if found is not None:
        return found
    # A request id appears in its usage entries' descriptions as "(<request id>)": a scan
    # of this license's entries, newest first, stopping at the first match.
    return entries.filter(description__contains=f"({term})").order_by("-occurred_at", "-id").first()


def ledger_page_at(*, license: License, entry: LedgerEntry, size: int = PAGE_SIZE) -> LedgerPage:
    """The page that starts with `entry` (a search result): entries at or older than it."""
    page = ledger_page(license=license, before=(entry.occurred_at, entry.pk + 1), size=size)
    found = next((row for row in page.rows if row.id == entry.pk), None)
    return LedgerPage(rows=page.rows, next_cursor=page.next_cursor, found=found)
