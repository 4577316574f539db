"""Reads of payments. Every tenant query goes through `for_license`."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import License
from billing.history.types import movement_q, transaction_label
from billing.ledger.kinds import CREDIT, PURCHASE, PURCHASE_REFUND, Movement
from billing.models import CreditGrant, GrantKind, LedgerEntry
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


def billing_history(license: License) -> QuerySet[Payment]:
    """Every credited card payment of the license, newest first."""
    return (
        Payment.objects.for_license(license)
        .filter(ledger_entry__isnull=False)
        .select_related("ledger_entry")
        .order_by("-credited_at", "-pk")
    )


@dataclass(frozen=True)
class BillingLine:
    """One line of Billing history: a card purchase, a refund to the card (with the purchase
    it reverses), or a credit given; told as its movement (billing.ledger.kinds)."""

    occurred_at: datetime
    movement: Movement
    label: str  # "Purchase", "Refund of card purchase #12", "Credit"
    amount: Decimal  # signed, as it moved the balance
    entry_id: int
    payment: Payment | None = None  # a card purchase: its receipt
    reverses: Payment | None = None  # a refund to the card: the card purchase it reverses
    reverses_entry_id: int | None = None  # …its purchase's transaction
    reason: str = ""

    @property
    def direction(self) -> str:
        return self.movement.direction.value


BILLING_HISTORY_LINES = 500


def billing_history_lines(
    license: License, limit: int = BILLING_HISTORY_LINES
) -> list[BillingLine]:
    """The license's card purchases, refunds to the card and credits, newest first: three
    small reads (payments; the refunds without a service, on index ledger_bare_refunds; the
    promotional grants), never a scan of the usage."""
    payments = list(billing_history(license)[:limit])
    refunds = list(
        LedgerEntry.objects.for_license(license)
        .filter(movement_q((PURCHASE_REFUND,)))
        .order_by("-occurred_at", "-id")
        .values_list("id", "occurred_at", "amount", "refund_of_id", "reason")[:limit]
    )
    reversed_payments = {
        p.ledger_entry_id: p
        for p in Payment.objects.for_license(license).filter(
            ledger_entry_id__in=[r[3] for r in refunds]
        )
    }
    credits = list(
        CreditGrant.objects.for_license(license)
        .filter(kind=GrantKind.PROMOTIONAL)
        .select_related("entry")
        .order_by("-granted_at", "-id")[:limit]
    )
    lines = [
        BillingLine(
            p.credited_at or p.ledger_entry.occurred_at,
            PURCHASE,
            PURCHASE.label,
            p.ledger_entry.amount,
            p.ledger_entry.pk,
            payment=p,
        )
        for p in payments
        if p.ledger_entry is not None
    ]
    lines += [
        BillingLine(
            at,
            PURCHASE_REFUND,
            transaction_label(PURCHASE_REFUND, refund_of_id),
            amount,
            entry_id,
            reverses=reversed_payments.get(refund_of_id),
            reverses_entry_id=refund_of_id,
            reason=reason,
        )
        for entry_id, at, amount, refund_of_id, reason in refunds
    ]
    lines += [
        BillingLine(
            g.entry.occurred_at,
            CREDIT,
            CREDIT.label,
            g.entry.amount,
            g.entry_id,
            reason=g.entry.reason,
        )
        for g in credits
        if g.entry.movement is CREDIT
    ]
    lines.sort(key=lambda line: (line.occurred_at, line.entry_id), reverse=True)
    return lines[:limit]


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
