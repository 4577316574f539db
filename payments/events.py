"""Stripe's webhook events, once each: what every verified event does.

The webhook view stores the event (unique by event id: a redelivery or replay is
recognised) and hands it to a task; `stripe_event_process` then acts on it. A
payment_intent event is checked against what the portal stored, then the intent is read
back from Stripe and settled (payments.services.crediting.payment_settle), so a late, reordered or
replayed event cannot move a payment backwards or credit it twice.
"""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments import emails, stripe_client
from payments.models import Payment, StripeEvent
from payments.services.crediting import _intent_matches, payment_settle
from payments.services.disputes import dispute_record
from payments.services.paying import payment_intent_missing
from payments.services.refunds import refunds_from_stripe_record
from payments.stripe_client import PaymentProviderError
from portal.exceptions import ApplicationError
from portal.logfmt import logfmt

logger = logging.getLogger(__name__)


def stripe_event_store(*, event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    """Keep a verified event once; (row, whether it still needs processing)."""
    row, created = StripeEvent.objects.get_or_create(
        event_id=str(event["id"]),
        defaults={"type": str(event.get("type") or ""), "payload": event},
    )
    return row, created or row.processed_at is None


def _snapshot_problem(intent: dict[str, Any]) -> tuple[Payment | None, str]:
    """What is wrong with an event's intent, compared with what the portal stored."""
    intent_id = str(intent.get("id") or "")
    payment = Payment.objects.filter(intent_id=intent_id).select_related("license").first()
    if payment is None:
        reference = str((intent.get("metadata") or {}).get("payment") or "")
        if reference.isdigit():
            payment = (
                Payment.objects.filter(pk=int(reference), intent_id__isnull=True)
                .select_related("license")
                .first()
            )
    if payment is None:
        return None, "an intent the portal did not create"
    return payment, _intent_matches(payment, intent)


def _process(row: StripeEvent) -> tuple[str, bool, int | None]:
    """(outcome, needs attention, license id) of one event."""
    obj: dict[str, Any] = (row.payload.get("data") or {}).get("object") or {}
    if row.type.startswith("payment_intent."):
        payment, problem = _snapshot_problem(obj)
        license_id = payment.license_id if payment is not None else None
        if problem:
            logger.warning(logfmt("payment event refused", id=row.event_id, reason=problem))
            return f"refused: {problem}", True, license_id
        try:
            fresh = stripe_client.payment_intent_get(str(obj["id"]))
        except PaymentProviderError as exc:
            if not exc.missing or payment is None:
                raise  # no answer: the task retries (ProviderUnavailable)
            # Stripe says the intent does not exist: a definitive answer, never retried.
            payment_intent_missing(payment=payment)
            return f"refused: Stripe does not know {obj['id']}", True, license_id
        outcome = payment_settle(intent=fresh, via="webhook")
        return outcome.message, outcome.needs_attention, license_id
    if row.type == "charge.refunded":
        try:
            results = refunds_from_stripe_record(
                charge=obj, intent_id=str(obj.get("payment_intent") or "")
            )
        except ApplicationError as exc:
            return f"refused: {exc}", True, None
        added = sum(1 for r in results if r.created)
        license_id = results[0].entry.license_id if results else None
        return (
            f"{added} refund(s) recorded, {len(results) - added} already there",
            False,
            license_id,
        )
    if row.type.startswith("charge.dispute."):
        try:
            dispute, opened = dispute_record(dispute=obj, event_type=row.type)
        except ApplicationError as exc:
            return f"refused: {exc}", True, None
        if opened:
            # Events are processed in a worker (payments.process_event): mail from here.
            dispute_pk = dispute.pk
            transaction.on_commit(lambda: emails.dispute_opened_send(dispute_id=dispute_pk))
        return f"dispute {dispute.status}", True, dispute.license_id
    return "ignored", False, None


def stripe_event_process(*, event_pk: int) -> str:
    """Act on a stored event, once (a processed event is left alone). Raises
    ProviderUnavailable when Stripe cannot be asked; the task retries."""
    row = StripeEvent.objects.get(pk=event_pk)
    if row.processed_at is not None:
        return row.outcome
    outcome, attention, license_id = _process(row)
    StripeEvent.objects.filter(pk=row.pk, processed_at__isnull=True).update(
        processed_at=timezone.now(),
        outcome=outcome[:500],
        needs_attention=attention,
        license_id=license_id,
    )
    logger.info(logfmt("stripe event", id=row.event_id, type=row.type, outcome=outcome))
    return outcome


def stripe_events_pending(*, older_than_seconds: int = 60) -> list[int]:
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
