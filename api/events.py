"""Webhook events owed by what billing announces (billing.signals), recorded in the
announcing transaction and handed to a worker once it commits (api/webhooks.py delivers)."""

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import License
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.tasks import webhook_deliveries_enqueue
from billing.signals import billing_event


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def webhook_event_record(
    *, event_type: str, license: License, data: dict[str, Any], **_: Any
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


def connect_billing_events() -> None:
    def receiver(sender: object, **kwargs: Any) -> None:
        webhook_event_record(**kwargs)

    billing_event.connect(receiver, weak=False, dispatch_uid="api.webhook_event_record")
