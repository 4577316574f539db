"""Writes of the API app: API keys and webhook endpoints, each audited."""

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import License, User
from api.events import EVENT_TYPES
from api.models import OWNER_SWITCHED_OFF, ApiKey, WebhookDelivery, WebhookEndpoint
from api.outbound import url_target
from api.tasks import webhook_deliveries_enqueue
from portal.exceptions import ApplicationError
from portal.text import invisible_character

KEY_PREFIX = "tcp_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8  # "tcp_" + 8 hex digits


def api_key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _clean_name(name: str, *, what: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError(f"Give the {what} a name.", field="name")
    if len(name) > 100:
        raise ApplicationError("Names are at most 100 characters.", field="name")
    problem = invisible_character(name)
    if problem:
        raise ApplicationError(f"The name may not contain a {problem}.", field="name")
    return name


@transaction.atomic
def api_key_create(
    *,
    acting_user: User | None,
    license: License,
    name: str,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for the license. Returns the key and its secret, which is never stored
    (only its SHA-256) and so cannot be shown again."""
    name = _clean_name(name, what="key")
    scopes = sorted(set(scopes or [ApiKey.Scope.READ]))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown:
        raise ApplicationError(f"Unknown scope: {', '.join(sorted(unknown))}.", field="scopes")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must be in the future.", field="expires_at")
    prefix = f"{KEY_PREFIX}{secrets.token_hex(4)}"
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        license=license,
        name=name,
        prefix=prefix,
        secret_hash=api_key_hash(raw),
        scopes=scopes,
        expires_at=expires_at,
        created_by=acting_user,
    )
    audit_record(
        actor=acting_user,
        license=license,
        action="api_key.create",
        target=f"API key {key.display}",
        changes={"name": name, "scopes": scopes, "expires_at": str(expires_at or "")},
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, acting_user: User | None, key: ApiKey) -> ApiKey:
    """Revoke a key: every request with it is refused (401) from now on."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=acting_user,
            license=key.license,
            action="api_key.revoke",
            target=f"API key {key.display}",
            changes={"name": key.name},
        )
    return key


def api_key_touch(*, key: ApiKey) -> None:
    """Note a key's use, at most once a minute (not a write per request)."""
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def _new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def webhook_endpoint_create(
    *, acting_user: User, license: License, url: str, events: list[str]
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown to the owner once).
    The URL's name is looked up before the transaction opens (nothing waits on DNS)."""
    url = (url or "").strip()
    if not url:
        raise ApplicationError("Give the URL that receives the events.", field="url")
    if len(url) > 500:
        raise ApplicationError("URLs are at most 500 characters.", field="url")
    url_target(url)  # refuses what may not be called (api/outbound.py)
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise ApplicationError(f"Unknown event: {', '.join(unknown)}.", field="events")
    events = [e for e in EVENT_TYPES if e in set(events)]
    if not events:
        raise ApplicationError("Choose at least one event.", field="events")
    secret = _new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            license=license, url=url, events=events, secret=secret, created_by=acting_user
        )
        audit_record(
            actor=acting_user,
            license=license,
            action="webhook.create",
            target=f"webhook {url}"[:200],
            changes={"url": url, "events": events},
        )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_set_active(
    *, acting_user: User, endpoint: WebhookEndpoint, active: bool
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if endpoint.is_active != active:
        endpoint.is_active = active
        endpoint.disabled_at = None if active else timezone.now()
        endpoint.disabled_reason = "" if active else OWNER_SWITCHED_OFF
        endpoint.failing_since = None
        endpoint.save()
        audit_record(
            actor=acting_user,
            license=endpoint.license,
            action="webhook.enable" if active else "webhook.disable",
            target=f"webhook {endpoint.url}"[:200],
        )
    return endpoint


@transaction.atomic
def webhook_endpoint_secret_rotate(
    *, acting_user: User, endpoint: WebhookEndpoint
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret, in force at once (deliveries from now on are signed with it);
    returns it, to be shown to the owner once."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = _new_secret()
    endpoint.secret = secret
    endpoint.save(update_fields=["secret", "updated_at"])
    audit_record(
        actor=acting_user,
        license=endpoint.license,
        action="webhook.rotate_secret",
        target=f"webhook {endpoint.url}"[:200],
    )
    return endpoint, secret


@transaction.atomic
def webhook_endpoint_delete(*, acting_user: User, endpoint: WebhookEndpoint) -> None:
    """Remove an endpoint and its delivery log; nothing more is sent to it. The events stay
    (other endpoints may have them); the audit trail keeps what was removed."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    deliveries, _ = WebhookDelivery.objects.filter(endpoint=endpoint).delete()
    audit_record(
        actor=acting_user,
        license=endpoint.license,
        action="webhook.delete",
        target=f"webhook {endpoint.url}"[:200],
        changes={"url": endpoint.url, "events": endpoint.events, "deliveries": deliveries},
    )
    endpoint.delete()


@transaction.atomic
def webhook_delivery_resend(*, acting_user: User, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now (whatever its status), once the click commits."""
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint", "event")
        .get(pk=delivery.pk)
    )
    if not delivery.endpoint.is_active:
        raise ApplicationError("Switch the endpoint on before resending to it.")
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    audit_record(
        actor=acting_user,
        license=delivery.license,
        action="webhook.resend",
        target=f"webhook delivery #{delivery.pk}",
        changes={"event": delivery.event.public_id, "url": delivery.endpoint.url},
    )
    ids = [delivery.pk]
    transaction.on_commit(lambda: webhook_deliveries_enqueue(delivery_ids=ids))
    return delivery
