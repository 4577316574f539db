"""Webhook events owed by the money events billing and payments write down (a consumer of
billing.events, registered in api.apps): read after the posting committed, each once; each
recorded with its deliveries in the consumer's transaction and handed to a worker once that
commits (api/webhooks.py delivers).

The catalogue customers choose from is made of the event types each app announces
(billing.events.types, payments.event_types); an announced event's data is the payload."""

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import License
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.tasks import webhook_deliveries_enqueue
from billing.events import types as billing_events
from billing.events.models import MoneyEvent
from payments import event_types as payment_events

EVENT_TYPES = billing_events.ANNOUNCED + payment_events.ANNOUNCED

# The consumer's name: its cursor over the money events.
WEBHOOK_CONSUMER = "api.webhooks"


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def webhook_event_record(
    *, event_type: str, license: License, data: dict[str, Any]
) -> WebhookEvent | None:
    """Owe an event to the license's endpoints that want it (inside the caller's transaction)."""
    endpoints = [
        e
        for e in WebhookEndpoint.objects.for_license(license).filter(is_active=True)
        if event_type in e.events
    ]
    if not endpoints:
        return None
    event = WebhookEvent.objects.create(
        license=license, public_id=new_event_id(), type=event_type, data=data
    )
    # The worker handed the delivery makes it at once; if that hand-over is lost, the
    # sweeper makes it a minute later.
    due = timezone.now() + timedelta(minutes=1)
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(license=license, event=event, endpoint=e, next_attempt_at=due)
        for e in endpoints
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: webhook_deliveries_enqueue(delivery_ids=ids))
    return event


def webhook_event_from_money_event(event: MoneyEvent) -> None:
    webhook_event_record(event_type=event.type, license=event.license, data=event.data)
