"""Reads of the API app: a license's keys and webhooks, and resolving a presented key."""

import hmac
from datetime import timedelta

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from accounts.models import License
from api.models import ApiKey, WebhookDelivery, WebhookEndpoint
from api.services import KEY_PREFIX, PREFIX_LENGTH, api_key_hash

RECENT_DELIVERIES = 50
_HEX = frozenset("0123456789abcdef")
GAVE_UP_WINDOW = timedelta(days=30)


def api_keys_for_license(license: License) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_license(license).order_by("-created_at", "-id")


def api_key_for_secret(raw: str) -> ApiKey | None:
    """The key a presented secret belongs to (revoked and expired ones included: the caller
    decides), or None. Looked up by its prefix; the hash is compared in constant time."""
    raw = raw or ""
    prefix, separator = raw[:PREFIX_LENGTH], raw[PREFIX_LENGTH : PREFIX_LENGTH + 1]
    if not prefix.startswith(KEY_PREFIX) or separator != "_" or len(raw) > 100:
        return None
    # Only a prefix made as api_key_create makes one is looked up: anything else (a NUL,
    # which PostgreSQL refuses in text, answered a 500) is no key.
    if not all(c in _HEX for c in prefix[len(KEY_PREFIX) :]):
        return None
    key = ApiKey.objects.select_related("license").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, api_key_hash(raw)):
        return None
    return key


def webhook_endpoints_for_license(license: License) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.for_license(license).order_by("-created_at", "-id")


def webhook_deliveries_recent(
    license: License, endpoint: WebhookEndpoint, limit: int = RECENT_DELIVERIES
) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.for_license(license)
        .filter(endpoint=endpoint)
        .select_related("event")
        .order_by("-created_at", "-id")[:limit]
    )


def webhook_endpoint_get(license: License, endpoint_id: int) -> WebhookEndpoint | None:
    """One of the license's endpoints; None for another license's (the caller's 404)."""
    if not 0 < endpoint_id < 2**63:
        return None
    return webhook_endpoints_for_license(license).filter(pk=endpoint_id).first()


def webhook_delivery_get(
    license: License, endpoint: WebhookEndpoint, delivery_id: int
) -> WebhookDelivery | None:
    if not 0 < delivery_id < 2**63:
        return None
    return (
        WebhookDelivery.objects.for_license(license)
        .filter(endpoint=endpoint, pk=delivery_id)
        .select_related("event", "endpoint")
        .first()
    )


def webhook_endpoints_failing() -> QuerySet[WebhookEndpoint]:
    """Endpoints in a run of failed deliveries: still trying (every delivery since
    `failing_since` failed), or switched off by it. A success, or an owner switching the
    endpoint off or on, ends the run (api.webhooks, api.services)."""
    return WebhookEndpoint.objects.filter(failing_since__isnull=False)


def webhook_endpoints_health(license: License) -> list[WebhookEndpoint]:
    """The license's endpoints for the staff's license page, one query: each with
    `gave_up` (deliveries given up on in the last 30 days, by the endpoint's recent-deliveries
    index) and `last_error` (its newest delivery's error, if any)."""
    since = timezone.now() - GAVE_UP_WINDOW
    newest_error = (
        WebhookDelivery.objects.filter(endpoint=OuterRef("pk"))
        .exclude(last_error="")
        .order_by("-created_at", "-id")
        .values("last_error")[:1]
    )
    return list(
        webhook_endpoints_for_license(license).annotate(
            gave_up=Count(
                "deliveries",
                filter=Q(
                    deliveries__status=WebhookDelivery.Status.FAILED,
                    deliveries__created_at__gte=since,
                ),
            ),
            last_error=Subquery(newest_error),
        )
    )
