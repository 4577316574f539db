"""Outgoing webhooks: events recorded from the money events billing and payments write down,
delivered after commit, signed like Stripe's.

- **Recording** (api/events.py). billing writes each money event down in its posting
  transaction; once it commits, api's consumer reads it (exactly once, billing.events)
  and `webhook_event_record` writes one WebhookEvent and one pending WebhookDelivery per
  active endpoint that wants the type, in the consumer's transaction, and hands the
  deliveries to a worker once it commits. A rolled-back posting owes nothing; nothing of
  api runs inside the posting.
- **Delivery** (`webhook_delivery_attempt`): at least once. Each attempt POSTs the event
  with `Webhook-Id` (the event id, the receiver's key for skipping repeats) and
  `Webhook-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the
  endpoint's secret>`. A 2xx ends it; anything else schedules the next attempt after
  settings.WEBHOOK_RETRY_MINUTES (1 min … 12 h, about 30 h in all), then it gives up.
  Retries are picked up by `api.deliver_due_webhooks` (beat, every minute), which also
  sweeps up deliveries whose hand-over was lost while the broker was down.
- **Order** per license is not promised: a retried event may arrive after a later one.
  Receivers order by the event's `created` time.
- **Failing endpoints.** An endpoint whose deliveries have failed without a success for
  settings.WEBHOOK_DISABLE_AFTER_SECONDS (3 days) is disabled and its owners get an email.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Membership
from api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from api.outbound import post_json

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Webhook-Signature"
ID_HEADER = "Webhook-Id"


def signature_header(*, secret: str, body: bytes, timestamp: int) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, as Stripe signs its events."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_verify(
    *, secret: str, body: bytes, header: str, tolerance_seconds: int = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute and compare in constant time, refuse stale stamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_seconds:
        return False
    expected = signature_header(secret=secret, body=body, timestamp=timestamp).split("v1=")[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def event_body(event: WebhookEvent) -> bytes:
    return json.dumps(
        {
            "id": event.public_id,
            "type": event.type,
            "created": event.created_at.isoformat(),
            "license": str(event.license.public_id),
            "data": event.data,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def _next_attempt(attempts: int, now: datetime) -> datetime | None:
    schedule = settings.WEBHOOK_RETRY_MINUTES
    if attempts > len(schedule):
        return None
    return now + timedelta(minutes=schedule[attempts - 1])


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Try one delivery now. Returns its status afterwards. Safe to call twice at once:
    the row is claimed (SKIP LOCKED) and a delivery already made is not made again."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint", "event", "event__license")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:  # another worker holds it
            return "busy"
        if delivery.status != WebhookDelivery.Status.PENDING:
            return delivery.status
        endpoint = delivery.endpoint
        if not endpoint.is_active:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.last_error = "endpoint disabled"
            delivery.save(update_fields=["status", "last_error"])
            return delivery.status
        body = event_body(delivery.event)
        result = post_json(
            url=endpoint.url,
            body=body,
            headers={
                ID_HEADER: delivery.event.public_id,
                SIGNATURE_HEADER: signature_header(
                    secret=endpoint.secret, body=body, timestamp=int(time.time())
                ),
                "User-Agent": "token-credit-portal-webhooks",
            },
        )
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = result.status_code
        delivery.last_error = result.error[:500]
        if result.ok:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
        else:
            delivery.next_attempt_at = _next_attempt(delivery.attempts, now)
            if delivery.next_attempt_at is None:
                delivery.status = WebhookDelivery.Status.FAILED
            _endpoint_failed(endpoint, now=now, error=result.error)
        delivery.save()
    logger.info(
        "webhook delivery=%s event=%s endpoint=%s attempt=%s status=%s code=%s",
        delivery.pk, delivery.event.public_id, endpoint.pk, delivery.attempts,
        delivery.status, result.status_code,
    )  # fmt: skip
    return delivery.status


def _endpoint_failed(endpoint: WebhookEndpoint, *, now: datetime, error: str) -> None:
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=now)
        return
    if (now - endpoint.failing_since).total_seconds() < settings.WEBHOOK_DISABLE_AFTER_SECONDS:
        return
    reason = f"Every delivery failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC ({error})."
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_at=now, disabled_reason=reason[:300]
    )
    audit_record(
        actor=None,
        license=endpoint.license,
        action="webhook.disable",
        target=f"webhook {endpoint.url}"[:200],
        reason=reason,
    )
    owners = list(
        Membership.objects.for_license(endpoint.license)
        .filter(role=Membership.Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
    )
    recipients = owners or [endpoint.license.contact_email]
    link = f"{settings.PORTAL_BASE_URL.rstrip('/')}{endpoint.license.get_absolute_url()}"
    transaction.on_commit(
        lambda: send_mail(
            subject=f"Webhook endpoint disabled for {endpoint.license.name}",
            message=(
                f"We stopped sending webhooks to {endpoint.url}.\n\n{reason}\n\n"
                f"Fix the receiver, then switch the endpoint on again (Webhooks, in the "
                f"portal): {link}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )
    )
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    """Pending deliveries whose next attempt is due (retries, and lost hand-overs)."""
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now or timezone.now()
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
