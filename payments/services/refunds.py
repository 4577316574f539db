"""Card refunds: the billing team's refund of a card purchase, through Stripe first (nothing
locked while it is called), then one ledger refund; and refunds made at Stripe, recorded
once from its charge.refunded event."""

from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import User
from billing.ledger.posting import exact_amount
from billing.models import LedgerEntry
from billing.purchases.refunds import purchase_refund_record
from billing.refunds.services import RefundResult, refundable_amount
from payments import stripe_client
from payments.models import (
    Payment,
    PaymentRefund,
)
from payments.services.cards import license_ref
from payments.stripe_client import (
    PaymentProviderError,
    cents_for,
    stripe_budget,
)
from portal.exceptions import ApplicationError


def payment_refund_issue(
    *,
    acting_user: User,
    purchase: LedgerEntry,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
) -> RefundResult:
    """The billing team refunds (part of) a card purchase (its admin page, payments.admin):
    through Stripe first, then one ledger refund ("re:<refund id>", so Stripe's own
    charge.refunded event adds nothing), recorded by billing.purchases.refunds.

    The form's idempotency key is stored before Stripe is called, under the payment's row
    lock, and committed: a double submit refunds once, and two refunds of one payment
    together never pass what is left of the purchase (a request on its way to Stripe counts
    as refunded). Stripe is called with no lock held and no transaction open; its refund is
    then recorded in a transaction of its own. A request Stripe refused, or did not answer,
    is withdrawn: a refund Stripe did make arrives with its charge.refunded event and is
    recorded once ("re:<refund id>")."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the refund is issued.", field="reason")
    amount = exact_amount(amount)
    if amount <= 0:
        raise ApplicationError("A refund must be a positive amount.", field="amount")
    if purchase.kind != LedgerEntry.Kind.PURCHASE:
        raise ApplicationError("Only a purchase can be refunded to the card.")
    payment = Payment.objects.filter(ledger_entry=purchase).select_related("license").first()
    if payment is None or payment.intent_id is None:
        raise ApplicationError("This purchase has no card payment to refund.")
    try:
        cents = cents_for(amount)
    except ValueError as exc:
        raise ApplicationError("Card refunds are in whole cents.", field="amount") from exc
    license = payment.license
    with transaction.atomic():
        Payment.objects.select_for_update().get(pk=payment.pk)
        existing = PaymentRefund.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.ledger_entry is not None:
                return RefundResult(existing.ledger_entry, False)
            raise ApplicationError("This refund was already sent to Stripe; reload the entry.")
        remaining = refundable_amount(purchase) - sum(
            (
                r.amount
                for r in PaymentRefund.objects.for_license(license).filter(
                    payment=payment, ledger_entry__isnull=True
                )
            ),
            Decimal("0"),
        )
        if amount > remaining:
            raise ApplicationError(
                f"At most ${remaining} of this purchase is still refundable.", field="amount"
            )
        try:
            request = PaymentRefund.objects.create(
                license=license, payment=payment, idempotency_key=idempotency_key, amount=amount
            )
        except IntegrityError as exc:
            raise ApplicationError("This refund is already being issued.") from exc
    try:
        with stripe_budget():
            refund = stripe_client.refund_create(
                intent_id=payment.intent_id,
                amount_cents=cents,
                idempotency_key=f"portal-refund-{idempotency_key}",
                metadata={"license": license_ref(license), "payment": str(payment.pk)},
            )
    except PaymentProviderError as exc:
        PaymentRefund.objects.filter(pk=request.pk, ledger_entry__isnull=True).delete()
        raise ApplicationError(f"Stripe did not refund: {exc.message}") from exc
    with transaction.atomic():
        request = PaymentRefund.objects.select_for_update().get(pk=request.pk)
        request.refund_id = str(refund["id"])
        result = purchase_refund_record(
            license=license,
            purchase=purchase,
            amount=stripe_client.money_from_cents(int(refund.get("amount") or cents)),
            external_id=f"re:{refund['id']}",
            reason=reason,
            acting_user=acting_user,
        )
        request.ledger_entry = result.entry
        request.save(update_fields=["refund_id", "ledger_entry", "updated_at"])
    return result


def refunds_from_stripe_record(*, charge: dict[str, Any], intent_id: str) -> list[RefundResult]:
    """charge.refunded: record each succeeded refund of the charge once ("re:<id>"),
    whether the billing team issued it here or someone did in Stripe's dashboard."""
    payment = Payment.objects.filter(intent_id=intent_id).select_related("license").first()
    if payment is None or payment.ledger_entry is None:
        raise ApplicationError(f"refund of {intent_id}: not a payment the portal credited")
    results = []
    refunds = (charge.get("refunds") or {}).get("data") or []
    for refund in refunds:
        if refund.get("status") not in ("succeeded", "pending"):
            continue
        results.append(
            purchase_refund_record(
                license=payment.license,
                purchase=payment.ledger_entry,
                amount=stripe_client.money_from_cents(int(refund["amount"])),
                external_id=f"re:{refund['id']}",
                reason=str((refund.get("metadata") or {}).get("reason") or "Refunded in Stripe"),
            )
        )
    return results
