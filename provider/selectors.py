"""Reads of the provider app: the service token a presented secret belongs to."""

import hmac

from django.db.models import QuerySet

from provider.models import ServiceToken
from provider.services import PREFIX_LENGTH, TOKEN_PREFIX, service_token_hash


def service_token_for_secret(raw: str) -> ServiceToken | None:
    """The usable token a presented secret belongs to, or None (unknown, malformed or
    revoked). Looked up by its prefix; the hash is compared in constant time. A customer's
    API key ("tcp_…") never matches: it has another prefix and lives in another table."""
    raw = raw or ""
    prefix, separator = raw[:PREFIX_LENGTH], raw[PREFIX_LENGTH : PREFIX_LENGTH + 1]
    if not prefix.startswith(TOKEN_PREFIX) or separator != "_" or len(raw) > 100:
        return None
    token = ServiceToken.objects.filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, service_token_hash(raw)):
        return None
    return token if token.is_usable else None


def service_tokens() -> QuerySet[ServiceToken]:
    return ServiceToken.objects.order_by("-created_at", "-id")
