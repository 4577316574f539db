"""The overview's Recent Transaction History: the newest entries as rows ready to print
(docs/product.md's formats), read by the ledger's index (license, -occurred_at, -id)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from accounts.models import License
from billing.history.types import transaction_label
from billing.ledger.kinds import Movement, movement_of
from billing.ledger.models import NEWEST_FIRST
from billing.models import LedgerEntry
from billing.money import format_money
from dashboard.formatting import format_count
from payments.selectors import is_card_purchase
from portal.moments import MONTH_ABBR
from portal.sql import CompiledQuery

RECENT_TRANSACTIONS = 100
DESCRIPTION_CHARS = 50  # docs/product.md: descriptions are cut to 50 characters in the table


@dataclass(frozen=True)
class TransactionRow:
    """One line of Recent Transaction History, ready to print (docs/product.md's formats)."""

    id: int
    occurred_at: datetime  # in the license's timezone
    date_label: str  # "Jun 30, 14:30"
    kind: str  # the movement's name (billing.ledger.kinds): purchase, purchase_refund, …
    kind_label: str  # its label: "Purchase", "Refund of card purchase #12", "Credit", …
    service: str
    amount: Decimal  # signed, as in the ledger
    amount_label: str  # absolute value: the colour says the direction
    tokens_label: str  # "1,234,567", "" for none
    images_label: str
    description: str
    description_short: str  # cut to 50 characters ("…" included) when longer
    has_receipt: bool = False  # a card purchase: its receipt is at dashboard:receipt/<id>

    @property
    def direction(self) -> str:
        """ "in" (green), "out" (red) or "" for a zero charge (a failed call)."""
        return "in" if self.amount > 0 else "out" if self.amount < 0 else ""

    @property
    def is_cut(self) -> bool:
        return self.description_short != self.description


def _recent(*, license_id: int) -> QuerySet:
    # Plain tuples, not model instances: a hundred of them on every dashboard.
    return (
        LedgerEntry.objects.history_of(license_id)
        .order_by(*NEWEST_FIRST)
        .values_list(
            "id",
            "kind",
            "service",
            "amount",
            "tokens",
            "images",
            "description",
            "occurred_at",
            "external_id",
            "refund_of_id",
        )[:RECENT_TRANSACTIONS]
    )


# Built by the ORM once per process (portal/sql.py): building it cost about as much as
# running it.
_RECENT = CompiledQuery("dashboard recent entries", _recent, in_index_order=True, license_id=-1)


def transactions_recent(license: License) -> list[TransactionRow]:
    """The newest entries, newest first, read by the index (license, -occurred_at, -id)."""
    tz = license.tzinfo
    # A hundred rows are a few movements: each (kind, sign, service) is looked up once.
    movements: dict[tuple[str, int, str], Movement] = {}
    rows = []
    for (
        entry_id,
        kind,
        service,
        amount,
        tokens,
        images,
        description,
        occurred_at,
        external_id,
        refund_of_id,
    ) in _RECENT.rows(license_id=license.pk):
        local = occurred_at.astimezone(tz)
        shape = (kind, (amount > 0) - (amount < 0), service)
        movement = movements.get(shape)
        if movement is None:
            movement = movements[shape] = movement_of(kind, amount, service)
        rows.append(
            TransactionRow(
                id=entry_id,
                occurred_at=local,
                date_label=f"{MONTH_ABBR[local.month - 1]} {local.day}, {local:%H:%M}",
                kind=movement.name,
                kind_label=transaction_label(movement, refund_of_id),
                service=service,
                amount=amount,
                amount_label=format_money(abs(amount)),
                tokens_label=format_count(tokens) if tokens else "",
                images_label=format_count(images) if images else "",
                description=description,
                description_short=_cut(description),
                has_receipt=kind == LedgerEntry.Kind.PURCHASE and is_card_purchase(external_id),
            )
        )
    return rows


def _cut(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    """At most `limit` characters, the last one "…" when something was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
