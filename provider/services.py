"""Writes of the provider app: service tokens made and revoked, each audited."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import User
from portal.exceptions import ApplicationError
from portal.text import invisible_character
from provider.models import ServiceToken

# Not the API keys' "tcp_": a token and a key are told apart at a glance, and neither
# lookup ever finds the other's prefix.
TOKEN_PREFIX = "tcs_"  # noqa: S105 (a prefix, not a secret)
PREFIX_LENGTH = len(TOKEN_PREFIX) + 8  # "tcs_" + 8 hex digits


def service_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def service_token_create(*, acting_user: User | None, name: str) -> tuple[ServiceToken, str]:
    """A new service token. Returns the token and its secret, which is never stored (only
    its SHA-256) and so cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError("Give the token a name.", field="name")
    if len(name) > 100:
        raise ApplicationError("Names are at most 100 characters.", field="name")
    problem = invisible_character(name)
    if problem:
        raise ApplicationError(f"The name may not contain a {problem}.", field="name")
    prefix = f"{TOKEN_PREFIX}{secrets.token_hex(4)}"
    raw = f"{prefix}_{secrets.token_urlsafe(32)}"
    token = ServiceToken.objects.create(
        name=name, prefix=prefix, secret_hash=service_token_hash(raw), created_by=acting_user
    )
    audit_record(
        actor=acting_user,
        action="service_token.create",
        target=f"service token {token.display}",
        changes={"name": name},
    )
    return token, raw


@transaction.atomic
def service_token_revoke(
    *, acting_user: User | None, token: ServiceToken, reason: str = ""
) -> ServiceToken:
    """Revoke a token: every request with it is refused (401) from the next one on."""
    token = ServiceToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=acting_user,
            action="service_token.revoke",
            target=f"service token {token.display}",
            changes={"name": token.name},
            reason=reason,
        )
    return token


def service_token_touch(*, token: ServiceToken) -> None:
    """Note a token's use, at most once a minute (not a write per request)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= 60:
        ServiceToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
