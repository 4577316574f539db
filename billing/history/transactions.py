"""A license's transactions as a customer reads them. A transaction is a ledger line (one
entry); a call is an API call, which posts one line per service it used. All transactions
shows a call's lines together as one row (its amount their sum), and every other line
(purchase, refund of a card purchase, credit, refund of a usage charge, expired credit)
as its own row, each told as its movement (billing.ledger.kinds: label, sign, name).

Reads only: the All transactions page, a transaction's page and (later) the customer API
share these. Pages are keyset-paged on the index ledger_license_recent (license,
-occurred_at, -id): a page is one index range scan from where the last one ended, no
OFFSET, so the first, the middle and the last page cost the same at 10 million entries."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import QuerySet

from accounts.models import License
from billing.history.types import TRANSACTION_TYPES, movement_q, transaction_label
from billing.ledger.kinds import Movement, movement_of
from billing.ledger.models import NEWEST_FIRST, OLDEST_FIRST
from billing.ledger.usage import usage_external_ids, usage_record_id
from billing.models import LedgerEntry, Service
from billing.money import ZERO
from billing.prices.selectors import price_book_get
from portal.plans import rows_in_index_order

Kind = LedgerEntry.Kind

TRANSACTIONS_PAGE_SIZE = 50
# A call is at most one entry per service: a page of n calls is at most this many entries.
ENTRIES_PER_CALL = len(Service)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELDS = (
    "id", "kind", "service", "amount", "tokens", "images", "api_calls", "description",
    "occurred_at", "external_id", "request_id", "endpoint", "status", "refund_of_id", "reason",
)  # fmt: skip


# The description a usage entry was given: "endpoint (request id) [status]", the last two
# optional. Entries recorded before the call columns existed are read from it.
_DESCRIPTION = re.compile(
    r"^(?P<endpoint>.*?)(?: \((?P<request_id>[^()]*)\))?(?: \[(?P<status>[^\[\]]*)\])?$"
)


@dataclass(frozen=True)
class CallDetails:
    request_id: str
    endpoint: str
    status: str


def call_details(*, request_id: str, endpoint: str, status: str, description: str) -> CallDetails:
    """A usage entry's call, from its columns, or from its description when it predates them."""
    if request_id or endpoint or status:
        return CallDetails(request_id, endpoint, status or "success")
    match = _DESCRIPTION.match(description or "")
    if match is None:  # pragma: no cover - the pattern matches any text
        return CallDetails("", description, "success")
    return CallDetails(
        match["request_id"] or "", match["endpoint"] or "", match["status"] or "success"
    )


@dataclass(frozen=True)
class Line:
    """One ledger entry of a transaction."""

    id: int
    service: str
    amount: Decimal
    tokens: int
    images: int


@dataclass
class Transaction:
    """One line of All transactions: a call (its charges folded), or one other entry."""

    id: int  # the entry that names it: a call's first charge
    kind: str
    occurred_at: datetime
    description: str
    amount: Decimal = ZERO
    tokens: int = 0
    images: int = 0
    record_id: str = ""
    request_id: str = ""
    endpoint: str = ""
    status: str = ""
    refund_of_id: int | None = None
    reason: str = ""  # a refund's or credit's reason, as written for the customer
    lines: list[Line] = field(default_factory=list)

    @property
    def movement(self) -> Movement:
        """What this line is (billing.ledger.kinds): a call is usage; a stored refund is a
        refund of a card purchase, of a usage charge, or (old goodwill) a credit."""
        service = self.lines[0].service if self.lines else ""
        return movement_of(self.kind, self.amount, service)

    @property
    def kind_label(self) -> str:
        """The movement's label: "Refund of card purchase", "Credit", "Refund", …"""
        return self.movement.label

    @property
    def label(self) -> str:
        """The label with what it refers to: "Refund of card purchase #12"."""
        return transaction_label(self.movement, self.refund_of_id)

    @property
    def is_call(self) -> bool:
        return self.kind == Kind.USAGE

    @property
    def entries(self) -> int:
        """Its ledger lines (transactions): a call has one per service it used."""
        return len(self.lines)

    @property
    def services(self) -> list[str]:
        return [line.service for line in self.lines if line.service]

    @property
    def direction(self) -> str:
        return "in" if self.amount > 0 else "out" if self.amount < 0 else ""


@dataclass(frozen=True)
class TransactionFilter:
    """What All transactions shows: [start, end), a type (a movement's name, or "refund"
    for both refunds: TRANSACTION_TYPES), a service, an endpoint, a status."""

    start: datetime | None = None
    end: datetime | None = None
    kind: str = ""
    service: str = ""
    endpoint: str = ""
    status: str = ""

    def __post_init__(self) -> None:
        if self.kind and self.kind not in TRANSACTION_TYPES:
            raise ValueError(f"{self.kind!r} is not a type of transaction")

    @classmethod
    def for_local_dates(
        cls,
        license: License,
        *,
        date_from: date | None = None,
        date_to: date | None = None,
        kind: str = "",
        service: str = "",
        endpoint: str = "",
        status: str = "",
    ) -> "TransactionFilter":
        """The filter as people and programs give it: days in the license's timezone, both
        ends inclusive (the All transactions page and the API's transactions)."""
        tz = license.tzinfo
        start = datetime.combine(date_from, time.min, tzinfo=tz) if date_from else None
        end = (
            datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=tz) if date_to else None
        )
        return cls(start, end, kind, service, endpoint, status)

    @property
    def is_empty(self) -> bool:
        return self == TransactionFilter()

    def apply(self, qs: QuerySet[LedgerEntry]) -> QuerySet[LedgerEntry]:
        if self.start is not None:
            qs = qs.filter(occurred_at__gte=self.start)
        if self.end is not None:
            qs = qs.filter(occurred_at__lt=self.end)
        if self.kind:
            qs = qs.filter(movement_q(TRANSACTION_TYPES[self.kind]))
        if self.service:
            qs = qs.filter(service=self.service)
        if self.endpoint:
            qs = qs.filter(endpoint=self.endpoint)
        if self.status:
            qs = qs.filter(status=self.status)
        return qs


@dataclass(frozen=True)
class Cursor:
    """A position in the newest-first order: an entry's (occurred_at, id)."""

    occurred_at: datetime
    id: int

    def __str__(self) -> str:
        micros = (self.occurred_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """The inverse of str(); ValueError for anything else."""
        micros, _, entry_id = (text or "").partition(".")
        try:
            cursor = cls(_EPOCH + timedelta(microseconds=int(micros)), int(entry_id))
        except OverflowError as exc:
            raise ValueError("not a position in the list") from exc
        if not 0 < cursor.id < 2**63:
            raise ValueError("not a position in the list")
        return cursor


@dataclass(frozen=True)
class TransactionPage:
    transactions: list[Transaction]
    newer: Cursor | None  # pass as `after` for the page before (newer); None on the first
    older: Cursor | None  # pass as `before` for the next page (older); None on the last


def _fold(
    rows: Iterable[tuple],
) -> list[tuple[Transaction, tuple[datetime, int], tuple[datetime, int]]]:
    """Rows in page order → transactions in that order, each with its first and last key."""
    folded: dict[str, list] = {}
    for row in rows:
        (entry_id, kind, service, amount, tokens, images, _calls, description,
         occurred_at, external_id, request_id, endpoint, status, refund_of_id, reason) = row  # fmt: skip
        key = f"u:{usage_record_id(external_id)}" if kind == Kind.USAGE else f"e:{entry_id}"
        item = folded.get(key)
        if item is None:
            tx = Transaction(
                id=entry_id,
                kind=kind,
                occurred_at=occurred_at,
                description=description,
                refund_of_id=refund_of_id,
                reason=reason,
            )
            if kind == Kind.USAGE:
                call = call_details(
                    request_id=request_id, endpoint=endpoint, status=status, description=description
                )
                tx.record_id = usage_record_id(external_id)
                tx.request_id, tx.endpoint, tx.status = call.request_id, call.endpoint, call.status
            item = folded[key] = [tx, (occurred_at, entry_id), (occurred_at, entry_id)]
        tx = item[0]
        tx.id = min(tx.id, entry_id)
        tx.amount += amount
        tx.tokens += tokens
        tx.images += images
        tx.lines.append(Line(entry_id, service, amount, tokens, images))
        item[2] = (occurred_at, entry_id)
    for tx, _, _ in folded.values():
        tx.lines.sort(key=lambda line: line.id)
    return [(item[0], item[1], item[2]) for item in folded.values()]


def transactions_page(
    license: License,
    flt: TransactionFilter | None = None,
    *,
    before: Cursor | None = None,
    after: Cursor | None = None,
    oldest: bool = False,
    size: int = TRANSACTIONS_PAGE_SIZE,
) -> TransactionPage:
    """`size` transactions newest first: the newest, those just older than `before`, just
    newer than `after`, or (`oldest`) the oldest ones. One query on the index."""
    qs = (flt or TransactionFilter()).apply(LedgerEntry.objects.history_of(license))
    ascending = after is not None or oldest
    if before is not None:
        qs = qs.filter(occurred_at__lte=before.occurred_at).exclude(
            occurred_at=before.occurred_at, id__gte=before.id
        )
    if after is not None:
        qs = qs.filter(occurred_at__gte=after.occurred_at).exclude(
            occurred_at=after.occurred_at, id__lte=after.id
        )
    order = OLDEST_FIRST if ascending else NEWEST_FIRST
    # Enough entries for `size` whole calls and the first entry of the one after: the last
    # call kept is then complete, and whether anything lies beyond is known.
    limit = size * ENTRIES_PER_CALL + ENTRIES_PER_CALL
    rows = rows_in_index_order(qs.order_by(*order).values_list(*_FIELDS)[:limit])
    folded = _fold(rows)
    more = len(folded) > size or len(rows) == limit
    kept = folded[:size]
    if ascending:
        kept.reverse()
    transactions = [item[0] for item in kept]
    if not kept:
        return TransactionPage([], None, None)
    # Keys in newest-first order: the first transaction's newest entry, the last one's oldest.
    first_key = kept[0][2] if ascending else kept[0][1]
    last_key = kept[-1][1] if ascending else kept[-1][2]
    if ascending:
        newer = Cursor(*first_key) if more else None
        older = Cursor(*last_key) if (after is not None) else None
    else:
        newer = Cursor(*first_key) if before is not None else None
        older = Cursor(*last_key) if more else None
    return TransactionPage(transactions, newer, older)


# Usage recorded before the call columns (billing.0007) has its request id only in the
# description (the ledger is append-only: it cannot be filled in). The expression index
# ledger_legacy_call_request_id (migration billing.0012) holds the request id read out of
# the description of exactly those calls; the expression is a constant in the SQL, the same
# text as the index's, so the planner uses the index whatever the parameter binding.
LEGACY_REQUEST_ID_SQL = r"substring(description FROM ' \(([^()]*)\)(?: \[[^\[\]]*\])?$')"
_LEGACY_REQUEST_ID_SEARCH_SQL = (  # constants only: the query's values are parameters
    "SELECT id FROM billing_ledgerentry WHERE license_id = %s AND kind = 'usage' "  # noqa: S608
    "AND api_calls = 1 AND request_id = '' AND "
    + LEGACY_REQUEST_ID_SQL
    + " = %s ORDER BY id DESC LIMIT 50"
)


def transactions_search(license: License, query: str) -> list[Transaction]:
    """Transactions whose entry id, upstream record id or request id is `query`, exactly.

    Each look-up is an index probe: the entry's primary key, the (license, external_id)
    unique index, the (license, request_id) index of calls, and for calls recorded before
    that column existed, the expression index of the request id in their description.
    """
    query = (query or "").strip()
    if not query:
        return []
    entries = LedgerEntry.objects.for_license(license)
    ids: set[int] = set()
    if query.lstrip("#").isdigit():
        ids.update(entries.filter(pk=int(query.lstrip("#"))).values_list("pk", flat=True))
    ids.update(
        entries.filter(external_id__in=usage_external_ids(query)).values_list("pk", flat=True)
    )
    ids.update(entries.filter(external_id=query).values_list("pk", flat=True))
    ids.update(
        entries.filter(api_calls=1, request_id=query)
        .exclude(request_id="")
        .values_list("pk", flat=True)[:50]
    )
    with connection.cursor() as cursor:
        cursor.execute(_LEGACY_REQUEST_ID_SEARCH_SQL, [license.pk, query])
        ids.update(pk for (pk,) in cursor.fetchall())
    found = [transaction_get(license, entry_id) for entry_id in sorted(ids, reverse=True)]
    unique: dict[int, Transaction] = {}
    for tx in found:
        if tx is not None:
            unique.setdefault(tx.id, tx)
    return sorted(unique.values(), key=lambda tx: (tx.occurred_at, tx.id), reverse=True)


def transaction_get(license: License, entry_id: int) -> Transaction | None:
    """The transaction an entry belongs to (a call: all its charges), None if not this
    license's (a stranger's entry is as missing as one that does not exist)."""
    entries = LedgerEntry.objects.for_license(license)
    row = entries.filter(pk=entry_id).values_list(*_FIELDS).first()
    if row is None:
        return None
    rows = [row]
    if row[1] == Kind.USAGE:
        rows = list(
            entries.filter(external_id__in=usage_external_ids(usage_record_id(row[9])))
            .order_by("id")
            .values_list(*_FIELDS)
        )
    return _fold(rows)[0][0]


@dataclass(frozen=True)
class ChargeArithmetic:
    """One service's charge: quantity × the unit price in effect then = exact, rounded once."""

    entry_id: int
    service: str
    quantity: int
    unit: str  # "tokens" / "images"
    unit_price: Decimal
    exact: Decimal  # the product before rounding, every digit
    amount: Decimal  # the charge, rounded half-up to 6 places, as in the ledger (positive)
    refunded: Decimal

    @property
    def rounding(self) -> Decimal:
        return self.amount - self.exact


@dataclass(frozen=True)
class Refund:
    id: int
    amount: Decimal
    occurred_at: datetime
    reason: str
    refund_of_id: int


@dataclass(frozen=True)
class TransactionDetail:
    transaction: Transaction
    charges: list[ChargeArithmetic]
    refunds: list[Refund]  # of this call's charges, or of this purchase to the card
    refunded_charge: Transaction | None  # for a refund: the call it refunds
    reason: str  # a refund's or credit's reason, written for the customer
    external_id: str  # a purchase's payment reference

    @property
    def refunded_total(self) -> Decimal:
        return sum((r.amount for r in self.refunds), ZERO)


def transaction_detail_get(license: License, entry_id: int) -> TransactionDetail | None:
    tx = transaction_get(license, entry_id)
    if tx is None:
        return None
    entries = LedgerEntry.objects.for_license(license)
    charges: list[ChargeArithmetic] = []
    # Refunds of a call's charges (positive), or of a purchase to the card (negative).
    refunds = [
        Refund(*r)
        for r in entries.filter(refund_of__in=[line.id for line in tx.lines])
        .order_by("occurred_at", "id")
        .values_list("id", "amount", "occurred_at", "reason", "refund_of_id")
    ]
    refunded_charge = None
    reason = external_id = ""
    if tx.is_call:
        book = price_book_get()
        for line in tx.lines:
            quantity = line.images if line.service == Service.AI_IMAGES else line.tokens
            unit_price = book.unit_price(line.service, tx.occurred_at)
            charges.append(
                ChargeArithmetic(
                    entry_id=line.id,
                    service=line.service,
                    quantity=quantity,
                    unit="images" if line.service == Service.AI_IMAGES else "tokens",
                    unit_price=unit_price,
                    exact=quantity * unit_price,
                    amount=-line.amount,
                    refunded=sum((r.amount for r in refunds if r.refund_of_id == line.id), ZERO),
                )
            )
    else:
        reason, external_id = entries.filter(pk=tx.id).values_list("reason", "external_id").get()
        if tx.refund_of_id is not None:
            refunded_charge = transaction_get(license, tx.refund_of_id)
    return TransactionDetail(tx, charges, refunds, refunded_charge, reason, external_id)
