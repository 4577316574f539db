"""Reads of payments. Every tenant query goes through `for_license`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import License
from billing.history.transactions import Cursor
from billing.history.types import movement_q, transaction_label
from billing.ledger.kinds import CREDIT, EXPIRY, PURCHASE, PURCHASE_REFUND, Movement
from billing.models import CreditGrant, Document, LedgerEntry
from payments.models import CARD_PURCHASE_PREFIX, Dispute, Payment, PaymentAccount, SavedCard


def payment_get(*, license: License, pk: int) -> Payment:
    """One of the license's payments; 404 for anything else (another license's too)."""
    return get_object_or_404(
        Payment.objects.for_license(license).select_related("ledger_entry"), pk=pk
    )


def is_card_purchase(external_id: str) -> bool:
    """A purchase entry credited from a card payment (it has a receipt)."""
    return external_id.startswith(CARD_PURCHASE_PREFIX)


def receipt_get(*, license: License, entry_id: int) -> Payment:
    """The card payment credited as this purchase entry of the license; 404 otherwise."""
    return get_object_or_404(
        Payment.objects.for_license(license)
        .filter(ledger_entry__isnull=False)
        .select_related("ledger_entry", "license"),
        ledger_entry_id=entry_id,
    )


@dataclass(frozen=True)
class BillingLine:
    """One line of Billing history: money in or out other than usage — a purchase (by card,
    by auto top-up, or recorded by billing), a refund to the card (with the purchase it
    reverses), a credit given, or credit that expired; told as its movement
    (billing.ledger.kinds), with its document (an invoice, a credit note) where it has one."""

    occurred_at: datetime
    movement: Movement
    label: str  # "Purchase", "Refund of card purchase #12", "Credit", "Expired credit"
    amount: Decimal  # signed, as it moved the balance
    entry_id: int
    payment: Payment | None = None  # a card purchase: its receipt
    reverses: Payment | None = None  # a refund to the card: the card purchase it reverses
    reverses_entry_id: int | None = None  # …its purchase's transaction
    reason: str = ""
    document: Document | None = None  # a purchase's invoice, a card refund's credit note

    @property
    def direction(self) -> str:
        return self.movement.direction.value


# Lines a page of Billing history shows; older ones are a page further ("Older →").
BILLING_HISTORY_PAGE = 100


@dataclass(frozen=True)
class BillingHistoryPage:
    lines: list[BillingLine]
    older: Cursor | None  # pass as `before` for the next page; None on the last


def _before(cursor: Cursor | None, at: str, entry_id: str) -> Q:
    """Lines strictly older than `cursor` in the newest-first order of (time, entry id)."""
    if cursor is None:
        return Q()
    return Q(**{f"{at}__lt": cursor.occurred_at}) | Q(
        **{at: cursor.occurred_at, f"{entry_id}__lt": cursor.id}
    )


def billing_history_page(
    license: License, *, before: Cursor | None = None, size: int = BILLING_HISTORY_PAGE
) -> BillingHistoryPage:
    """The license's purchases, refunds to the card, credits and expiries, newest first, a
    page at a time (keyset: each source read from the cursor, `size` + 1 of each at most):
    small reads (the grants, which every purchase and credit has; the refunds without a
    service, on index ledger_bare_refunds; the expired grants; then the payments and
    documents of those entries), never a scan of the usage."""
    grants = list(
        CreditGrant.objects.for_license(license)
        .filter(_before(before, "entry__occurred_at", "entry_id"))
        .select_related("entry")
        .order_by("-entry__occurred_at", "-entry_id")[: size + 1]
    )
    # A grant of a usage refund (rare) is no money in or out: it stays on the transactions.
    grants = [g for g in grants if g.entry.movement in (PURCHASE, CREDIT)]
    refunds = list(
        LedgerEntry.objects.for_license(license)
        .filter(movement_q((PURCHASE_REFUND,)))
        .filter(_before(before, "occurred_at", "id"))
        .order_by("-occurred_at", "-id")
        .values_list("id", "occurred_at", "amount", "refund_of_id", "reason")[: size + 1]
    )
    expiries = list(
        CreditGrant.objects.for_license(license)
        .filter(expiry_entry__isnull=False)
        .filter(_before(before, "expiry_entry__occurred_at", "expiry_entry_id"))
        .select_related("expiry_entry")
        .order_by("-expiry_entry__occurred_at", "-expiry_entry_id")[: size + 1]
    )
    purchase_ids = [g.entry_id for g in grants if g.entry.movement is PURCHASE]
    payments = {
        p.ledger_entry_id: p
        for p in Payment.objects.for_license(license)
        .filter(ledger_entry_id__in=purchase_ids + [r[3] for r in refunds])
        .select_related("ledger_entry")
    }
    documents = {
        d.entry_id: d
        for d in Document.objects.for_license(license)
        .filter(entry_id__in=purchase_ids + [r[0] for r in refunds])
        .select_related("invoice")
    }
    lines = [
        BillingLine(
            g.entry.occurred_at,
            g.entry.movement,
            g.entry.movement.label,
            g.entry.amount,
            g.entry_id,
            payment=payments.get(g.entry_id),
            reason=g.entry.reason or g.entry.description,
            document=documents.get(g.entry_id),
        )
        for g in grants
    ]
    lines += [
        BillingLine(
            at,
            PURCHASE_REFUND,
            transaction_label(PURCHASE_REFUND, refund_of_id),
            amount,
            entry_id,
            reverses=payments.get(refund_of_id),
            reverses_entry_id=refund_of_id,
            reason=reason,
            document=documents.get(entry_id),
        )
        for entry_id, at, amount, refund_of_id, reason in refunds
    ]
    lines += [
        BillingLine(
            g.expiry_entry.occurred_at,
            EXPIRY,
            EXPIRY.label,
            g.expiry_entry.amount,
            g.expiry_entry.pk,
            reverses_entry_id=g.entry_id,
            reason=g.expiry_entry.description,
        )
        for g in expiries
        if g.expiry_entry is not None
    ]
    lines.sort(key=lambda line: (line.occurred_at, line.entry_id), reverse=True)
    kept = lines[:size]
    older = Cursor(kept[-1].occurred_at, kept[-1].entry_id) if len(lines) > size else None
    return BillingHistoryPage(kept, older)


def saved_cards(license: License) -> list[SavedCard]:
    return list(
        SavedCard.objects.for_license(license)
        .filter(removed_at__isnull=True)
        .order_by("-is_default", "-created_at")
    )


def account_for(license: License) -> PaymentAccount | None:
    return PaymentAccount.objects.for_license(license).first()


def open_disputes(license: License) -> QuerySet[Dispute]:
    return Dispute.objects.for_license(license).filter(closed_at__isnull=True)
