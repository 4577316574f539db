"""Crediting (`payment_settle`), the one place a payment becomes money: it locks the
payment row, checks the intent against what the portal stored when it created it (license,
amount, currency), and records one purchase with external id "pi:<intent id>"
(CARD_PURCHASE_PREFIX) through billing.purchases.services.purchase_record. Every path that
learns an intent's state (the webhook, the browser's return, the server's own create call,
the auto top-up task) goes through it, in any order and any number of times; the payment
row lock and the ledger's unique (license, external_id) make the second arrival a no-op."""

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from billing.purchases.services import purchase_record
from payments import stripe_client
from payments.models import (
    CARD_PURCHASE_PREFIX,
    Payment,
)
from payments.services.cards import license_ref
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)


Status = Payment.Status


def purchase_external_id(intent_id: str) -> str:
    return f"{CARD_PURCHASE_PREFIX}{intent_id}"


@dataclass(frozen=True)
class SettleOutcome:
    payment: Payment | None
    credited: bool
    message: str
    needs_attention: bool = False


def _attention(message: str, intent_id: str, payment: Payment | None = None) -> SettleOutcome:
    logger.warning(logfmt("payment refused", intent=intent_id, reason=message))
    return SettleOutcome(payment, False, message, needs_attention=True)


def _payment_for_intent(intent: dict[str, Any]) -> tuple[Payment | None, str]:
    """The portal's payment row for an intent, locked; or None and why not.

    An intent the portal created has its row stored before Stripe was called; if Stripe's
    answer (its id) was lost, the row is found by the payment number in the intent's
    metadata, once, and only if it has no intent yet."""
    intent_id = str(intent.get("id") or "")
    payment = Payment.objects.select_for_update().filter(intent_id=intent_id).first()
    if payment is not None:
        return payment, ""
    reference = str((intent.get("metadata") or {}).get("payment") or "")
    if reference.isdigit():
        payment = (
            Payment.objects.select_for_update()
            .filter(pk=int(reference), intent_id__isnull=True)
            .first()
        )
        if payment is not None and _intent_matches(payment, intent) == "":
            payment.intent_id = intent_id
            payment.save(update_fields=["intent_id", "updated_at"])
            return payment, ""
    return None, "an intent the portal did not create"


def _intent_matches(payment: Payment, intent: dict[str, Any]) -> str:
    metadata = intent.get("metadata") or {}
    if str(metadata.get("license") or "") != license_ref(payment.license):
        return "an intent of another license"
    if int(intent.get("amount") or 0) != payment.amount_cents:
        return f"an amount changed from {payment.amount_cents} to {intent.get('amount')} cents"
    if str(intent.get("currency") or "").lower() != payment.currency:
        return f"a currency changed to {intent.get('currency')}"
    return ""


def _next_receipt_number(payment: Payment) -> str:
    return f"R{timezone.now():%Y}-{payment.pk:07d}"


def payment_settle(*, intent: dict[str, Any], via: str) -> SettleOutcome:
    """Bring a payment in line with its intent, crediting it once if it succeeded.

    `intent` is Stripe's PaymentIntent (from the API, never only from a browser). Returns
    what happened; an intent the portal did not create for that license, or whose amount
    or currency changed, credits nothing and `needs_attention`."""
    intent_id = str(intent.get("id") or "")
    with transaction.atomic():
        payment, why = _payment_for_intent(intent)
        if payment is None:
            return _attention(why, intent_id)
        mismatch = _intent_matches(payment, intent)
        if mismatch:
            return _attention(mismatch, intent_id, payment)
        status = str(intent.get("status") or "")
        before = payment.status
        credited = False
        if payment.status == Status.SUCCEEDED:
            # Terminal: a late or replayed event of an earlier state changes nothing.
            return SettleOutcome(payment, False, "already credited")
        if status == "succeeded":
            cents = stripe_client.captured_cents(intent)
            if cents <= 0 or cents > payment.amount_cents:
                return _attention(f"a captured amount of {cents} cents", intent_id, payment)
            amount = stripe_client.money_from_cents(cents)
            description = (
                "Auto top-up" if payment.source == Payment.Source.AUTO_TOPUP else "Card payment"
            )
            if payment.card_last4:
                description += f" ({payment.card_label})"
            result = purchase_record(
                license=payment.license,
                amount=amount,
                external_id=purchase_external_id(intent_id),
                description=description,
                payment_method=(
                    f"{payment.card_label or 'Card'}"
                    + (", auto top-up" if payment.source == Payment.Source.AUTO_TOPUP else "")
                ),
            )
            payment.ledger_entry = result.entry
            payment.captured_cents = cents
            payment.status = Status.SUCCEEDED
            payment.failure_message = ""
            payment.client_secret = ""
            payment.credited_at = timezone.now()
            payment.receipt_number = _next_receipt_number(payment)
            credited = result.created
        elif status == "requires_action":
            payment.status = Status.REQUIRES_ACTION
            payment.client_secret = str(intent.get("client_secret") or "")
        elif status in ("processing", "requires_confirmation", "requires_capture"):
            payment.status = Status.PROCESSING
        elif status in ("requires_payment_method", "canceled"):
            error = intent.get("last_payment_error") or {}
            payment.status = Status.FAILED
            payment.client_secret = ""
            payment.failure_message = str(error.get("message") or "The payment was not completed.")[
                :500
            ]
        payment.save()
        if payment.status != before:
            audit_record(
                actor=None,
                license=payment.license,
                action="payment.status",
                target=f"payment #{payment.pk}",
                changes={
                    "status": [before, payment.status],
                    "intent": intent_id,
                    "via": via,
                    **({"ledger_entry": payment.ledger_entry_id} if credited else {}),
                },
            )
    if credited:
        logger.info(
            logfmt(
                "payment credited",
                payment=payment.pk,
                intent=intent_id,
                amount=payment.amount,
                via=via,
            )
        )
    return SettleOutcome(payment, credited, "credited" if credited else payment.status)
