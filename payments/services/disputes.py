"""Disputes of a card payment, recorded from Stripe's events and told to the billing team."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from billing.events.services import money_event_record, money_text
from billing.purchases.refunds import purchase_refund_record
from billing.refunds.services import refundable_amount
from payments import stripe_client
from payments.event_types import DISPUTE_UPDATED
from payments.models import (
    Dispute,
    Payment,
)
from portal.exceptions import ApplicationError


def dispute_record(*, dispute: dict[str, Any], event_type: str) -> tuple[Dispute, bool]:
    """charge.dispute.*: keep the dispute and its status; a lost dispute takes the disputed
    money back off the balance once ("dp:<dispute id>"). Returns (dispute, opened now)."""
    intent_id = str(dispute.get("payment_intent") or "")
    payment = Payment.objects.filter(intent_id=intent_id).select_related("license").first()
    if payment is None or payment.ledger_entry is None:
        raise ApplicationError(
            f"dispute on {intent_id or dispute.get('charge')}: not a payment the portal credited"
        )
    with transaction.atomic():
        row, created = Dispute.objects.select_for_update().get_or_create(
            dispute_id=str(dispute["id"]),
            defaults={
                "license": payment.license,
                "payment": payment,
                "amount_cents": int(dispute.get("amount") or 0),
                "reason": str(dispute.get("reason") or ""),
                "status": str(dispute.get("status") or ""),
            },
        )
        before = "" if created else row.status
        row.status = str(dispute.get("status") or row.status)
        if event_type == "charge.dispute.closed" and row.closed_at is None:
            row.closed_at = timezone.now()
        row.save()
        if created or before != row.status:
            audit_record(
                actor=None,
                license=payment.license,
                action="payment.dispute",
                target=f"payment #{payment.pk}",
                changes={"dispute": row.dispute_id, "status": [before, row.status]},
                reason=row.reason,
            )
            money_event_record(
                license=payment.license,
                event_type=DISPUTE_UPDATED,
                data={
                    "dispute_id": row.dispute_id,
                    "payment_id": payment.pk,
                    "transaction_id": payment.ledger_entry.pk,
                    "amount": money_text(stripe_client.money_from_cents(row.amount_cents)),
                    "reason": row.reason,
                    "status": row.status,
                    "previous_status": before or None,
                },
            )
        lost = min(
            stripe_client.money_from_cents(row.amount_cents),
            refundable_amount(payment.ledger_entry),
        )
        if row.status == "lost" and lost > 0:
            purchase_refund_record(
                license=payment.license,
                purchase=payment.ledger_entry,
                amount=lost,
                external_id=f"dp:{row.dispute_id}",
                reason=f"Dispute {row.dispute_id} lost ({row.reason or 'no reason given'})",
            )
    return row, created
