"""Reads of payments. Every tenant query goes through `for_license`."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import License
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
